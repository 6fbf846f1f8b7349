//! One plain HTTP/1.1 request made before a connect: a venue's REST endpoint that hands out the
//! connect token and the server to dial (KuCoin's `bullet-public`, see
//! [`crate::net::venue::token`]).
//!
//! It goes over the same path as the WebSocket dial (TCP, the stream's HTTP CONNECT proxy if it
//! has one, TLS with the stream's settings for `https://`), asks with `Connection: close`, and
//! reads the body to its `Content-Length`, through its chunks, or to the end of the stream,
//! never more than [`MAX_BODY`] bytes, all within the stream's `handshake_timeout`. wsrec needs
//! no HTTP client library for this one request.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::dial::{Opened, open};
use super::error::{Phase, TransportError};
use super::handshake::{host_value, parse_retry_after};
use super::head::{MAX_QUOTED_BODY, Reply, printable, read_head};
use super::spec::ConnectSpec;

/// Largest response body taken (a connect token answer is well under 1 KiB).
pub const MAX_BODY: usize = 256 * 1024;

/// A response: status, the `Retry-After` it asked for, and the body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub code: u16,
    /// Reason phrase (printable part).
    pub reason: String,
    /// The server's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// The body, decoded from chunks if it came in them.
    pub body: Bytes,
}

impl Answer {
    /// The start of the body, printable characters only, for error messages.
    pub fn quoted_body(&self) -> String {
        printable(&self.body, MAX_QUOTED_BODY)
    }
}

/// POSTs `body` (JSON) to `url` and reads the answer, whatever its status.
///
/// # Errors
/// [`TransportError::Timeout`] naming the phase, or [`TransportError::Failed`] with the cause:
/// DNS, TCP, proxy, TLS, a malformed answer, or a body over [`MAX_BODY`].
pub async fn post(
    spec: &ConnectSpec,
    url: &url::Url,
    body: &str,
) -> Result<Answer, TransportError> {
    let phase = AtomicU8::new(Phase::Tcp as u8);
    match tokio::time::timeout(spec.handshake_timeout, exchange(spec, url, body, &phase)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout {
            after: spec.handshake_timeout,
            phase: match phase.load(Relaxed) {
                p if p == Phase::Upgrade as u8 => "waiting for the answer to the HTTP request",
                p => Phase::ALL[usize::from(p).min(2)].describe(),
            },
        }),
    }
}

async fn exchange(
    spec: &ConnectSpec,
    url: &url::Url,
    body: &str,
    phase: &AtomicU8,
) -> Result<Answer, TransportError> {
    let Opened {
        mut io, host, port, ..
    } = open(spec, url, phase, false).await?;
    phase.store(Phase::Upgrade as u8, Relaxed);
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let request = format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: wsrec/{}\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        host_value(url, &host, port),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let failed =
        |e: std::io::Error| TransportError::Failed(format!("sending the request failed: {e}"));
    io.write_all(request.as_bytes()).await.map_err(failed)?;
    io.flush().await.map_err(failed)?;
    let Reply { head, leftover } = read_head(&mut io, "the server").await?;
    let mut buf = BytesMut::from(&leftover[..]);
    let chunked = head
        .value("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(&mut io, &mut buf).await?
    } else if let Some(len) = head.value("content-length") {
        let len: usize = len.parse().map_err(|_| {
            TransportError::Failed(format!("the server sent a bad Content-Length: {len:?}"))
        })?;
        if len > MAX_BODY {
            return Err(too_large());
        }
        fill(&mut io, &mut buf, len).await?;
        buf.split_to(len).freeze()
    } else {
        read_to_end(&mut io, &mut buf).await?;
        buf.freeze()
    };
    Ok(Answer {
        code: head.code,
        retry_after: head
            .value("retry-after")
            .and_then(|v| parse_retry_after(&v)),
        reason: head.reason,
        body,
    })
}

fn too_large() -> TransportError {
    TransportError::Failed(format!(
        "the server's answer is larger than {MAX_BODY} bytes; this is not the endpoint expected"
    ))
}

/// Reads into `buf` until it holds at least `need` bytes.
async fn fill<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    need: usize,
) -> Result<(), TransportError> {
    while buf.len() < need {
        if io.read_buf(buf).await.map_err(read_failed)? == 0 {
            return Err(TransportError::Failed(
                "the server closed the connection before the end of its answer".to_owned(),
            ));
        }
    }
    Ok(())
}

fn read_failed(e: std::io::Error) -> TransportError {
    TransportError::Failed(format!("reading the server's answer failed: {e}"))
}

/// Reads to the end of the stream (an answer without length), bounded.
async fn read_to_end<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<(), TransportError> {
    loop {
        if buf.len() > MAX_BODY {
            return Err(too_large());
        }
        if io.read_buf(buf).await.map_err(read_failed)? == 0 {
            return Ok(());
        }
    }
}

/// Decodes a chunked body (RFC 9112 7.1): hex sizes, chunk extensions and trailers ignored.
async fn read_chunked<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<Bytes, TransportError> {
    let mut body = BytesMut::new();
    loop {
        let line = loop {
            if let Some(at) = memchr::memmem::find(buf, b"\r\n") {
                break buf.split_to(at + 2);
            }
            if buf.len() > 1024 {
                return Err(bad_chunk(buf));
            }
            let had = buf.len();
            fill(io, buf, had + 1).await?;
        };
        let size = std::str::from_utf8(&line[..line.len() - 2])
            .ok()
            .map(|l| l.split(';').next().unwrap_or("").trim())
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .ok_or_else(|| bad_chunk(&line))?;
        if size == 0 {
            return Ok(body.freeze());
        }
        if body.len() + size > MAX_BODY {
            return Err(too_large());
        }
        fill(io, buf, size + 2).await?;
        body.extend_from_slice(&buf[..size]);
        if &buf[size..size + 2] != b"\r\n" {
            return Err(bad_chunk(&buf[size..]));
        }
        buf.advance(size + 2);
    }
}

fn bad_chunk(bytes: &[u8]) -> TransportError {
    TransportError::Failed(format!(
        "the server's chunked answer is malformed near {:?}",
        printable(&bytes[..bytes.len().min(40)], 40)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that reads one request and answers `reply` (split into two writes to test
    /// reassembly), then closes; returns its URL and the request it got.
    async fn serve(reply: &'static [u8]) -> (url::Url, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!(
            "http://{}/api/v1/bullet-public?x=1",
            l.local_addr().unwrap()
        ))
        .unwrap();
        let task = tokio::spawn(async move {
            let (mut tcp, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 1024];
            while !got.ends_with(b"{}") {
                let n = tcp.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            let (a, b) = reply.split_at(reply.len() / 2);
            tcp.write_all(a).await.unwrap();
            tcp.flush().await.unwrap();
            tcp.write_all(b).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        (url, task)
    }

    fn spec() -> ConnectSpec {
        let s = crate::config::StreamConfig::new("s", "ws://127.0.0.1:1/");
        ConnectSpec::from_config(&s).unwrap()
    }

    #[tokio::test]
    async fn answers_are_read_by_length_by_chunks_and_to_the_end() {
        let (url, req) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}").await;
        let a = post(&spec(), &url, "{}").await.unwrap();
        assert_eq!((a.code, &a.body[..]), (200, &b"{\"a\":1}"[..]));
        let req = req.await.unwrap();
        assert!(
            req.starts_with("POST /api/v1/bullet-public?x=1 HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.contains("\r\nContent-Length: 2\r\n") && req.contains("Connection: close"),
            "{req}"
        );

        let (url, _) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"b\"\r\n3\r\n:2}\r\n0\r\n\r\n",
        )
        .await;
        let a = post(&spec(), &url, "{}").await.unwrap();
        assert_eq!(&a.body[..], b"{\"b\":2}");

        let (url, _) = serve(b"HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\nlater").await;
        let a = post(&spec(), &url, "{}").await.unwrap();
        assert_eq!(a.code, 503);
        assert_eq!(a.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(a.quoted_body(), "later");
    }

    #[test]
    fn an_https_endpoint_gets_the_streams_tls_settings() {
        let mut s = crate::config::StreamConfig::new("s", "ws://127.0.0.1:1/");
        s.token_url = Some("http://127.0.0.1:2/api/v1/bullet-public".to_owned());
        assert!(ConnectSpec::from_config(&s).unwrap().tls.is_none());
        s.token_url = Some("https://api.kucoin.com/api/v1/bullet-public".to_owned());
        assert!(ConnectSpec::from_config(&s).unwrap().tls.is_some());
    }

    #[tokio::test]
    async fn malformed_and_oversized_answers_are_errors() {
        let (url, _) = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").await;
        let e = post(&spec(), &url, "{}").await.unwrap_err().to_string();
        assert!(e.contains("chunked answer is malformed"), "{e}");
        let (url, _) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n").await;
        let e = post(&spec(), &url, "{}").await.unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        let (url, _) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
        let e = post(&spec(), &url, "{}").await.unwrap_err().to_string();
        assert!(e.contains("before the end of its answer"), "{e}");
    }
}
