//! Plain HTTP/1.1 requests to a venue's REST endpoints: the connect token asked before a connect
//! (KuCoin's `bullet-public`, see [`crate::net::venue::token`]) and order-book snapshots.
//!
//! The byte stream is the WebSocket dial's (`dial.rs`: TCP, the stream's HTTP CONNECT
//! proxy if it has one, TLS with the stream's roots, `ca_file` and `insecure` for `https://`);
//! the HTTP itself is hyper's client connection (`hyper::client::conn::http1`) over it: one
//! request per connection, sent with `Connection: close`, the body collected up to a limit the
//! caller gives ([`Call::max_body`]), all within the caller's timeout. Every answer comes back
//! whatever its status ([`Answer`]); retrying is the caller's job. Errors never name the URL
//! (it may carry secrets): callers put the masked URL in front.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;

use super::dial::{Opened, open};
use super::error::{Phase, TransportError};
use super::handshake::{host_value, parse_retry_after};
use super::head::{MAX_QUOTED_BODY, printable};
use super::spec::ConnectSpec;
use crate::clock::Clock;

/// Largest connect token answer taken (a real one is well under 1 KiB).
pub const MAX_BODY: usize = 256 * 1024;

/// How one request is bounded and timed.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// Largest body taken; a larger one is an error.
    pub max_body: usize,
    /// Deadline for the whole request: TCP, proxy, TLS, request, answer and body.
    pub timeout: Duration,
    /// The clock [`Answer::sent_ns`] and [`Answer::done_ns`] are read from.
    pub clock: Clock,
}

/// A response: status, the `Retry-After` it asked for, the body, and when.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub code: u16,
    /// Reason phrase (as sent, else the standard one for the code).
    pub reason: String,
    /// The server's `Retry-After`, if it sent one (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    /// The body, decoded from chunks if it came in them.
    pub body: Bytes,
    /// When the request was handed to the open connection (ns since the epoch, after TCP, proxy
    /// and TLS).
    pub sent_ns: u64,
    /// When the body was complete (ns since the epoch).
    pub done_ns: u64,
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
/// [`TransportError::Failed`] with the cause: DNS, TCP, proxy, TLS, a malformed answer, a body
/// over [`Call::max_body`], or no complete answer within [`Call::timeout`].
pub async fn post(
    spec: &ConnectSpec,
    url: &url::Url,
    body: &str,
    call: Call,
) -> Result<Answer, TransportError> {
    request(spec, hyper::Method::POST, url, Some(body), call).await
}

/// GETs `url` (query included) and reads the answer, whatever its status.
///
/// # Errors
/// As [`post`].
pub async fn get(spec: &ConnectSpec, url: &url::Url, call: Call) -> Result<Answer, TransportError> {
    request(spec, hyper::Method::GET, url, None, call).await
}

/// Where a request is, for the timeout message.
const WAITING: u8 = Phase::Upgrade as u8;

async fn request(
    spec: &ConnectSpec,
    method: hyper::Method,
    url: &url::Url,
    body: Option<&str>,
    call: Call,
) -> Result<Answer, TransportError> {
    let phase = AtomicU8::new(Phase::Tcp as u8);
    let exchange = async {
        let Opened { io, host, port, .. } = open(spec, url, &phase, false).await?;
        phase.store(WAITING, Relaxed);
        let request = build(method, url, &host_value(url, &host, port), body)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| failed("starting the HTTP exchange", &e))?;
        let sent_ns = call.clock.now_ns();
        let answer = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| failed("the HTTP request", &e))?;
            read(response, call.max_body).await
        };
        // The connection is driven here, not on a task of its own, so nothing outlives the
        // timeout. Its end (the server closed after the answer, or failed) leaves the answer
        // to finish with what came or with the connection's error.
        tokio::pin!(conn, answer);
        let mut conn_done = false;
        let (code, reason, retry_after, body) = loop {
            tokio::select! {
                a = &mut answer => break a?,
                _ = &mut conn, if !conn_done => conn_done = true,
            }
        };
        Ok(Answer {
            code,
            reason,
            retry_after,
            body,
            sent_ns,
            done_ns: call.clock.now_ns(),
        })
    };
    match tokio::time::timeout(call.timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Failed(format!(
            "no complete answer within {:?} ({}); the server or the network is slow, or the \
             timeout too short",
            call.timeout,
            match phase.load(Relaxed) {
                WAITING => "waiting for the answer to the HTTP request",
                p => Phase::ALL[usize::from(p).min(2)].describe(),
            }
        ))),
    }
}

/// The request: origin-form target (path and query), `Host`, and a JSON body if given.
fn build(
    method: hyper::Method,
    url: &url::Url,
    host: &str,
    body: Option<&str>,
) -> Result<hyper::Request<Full<Bytes>>, TransportError> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let target = if target.is_empty() { "/" } else { target };
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, host)
        .header(
            header::USER_AGENT,
            concat!("wsrec/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "application/json")
        .header(header::CONNECTION, "close");
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    // The builder's error would quote the URL, which may hold secrets: say what is wrong only.
    request
        .body(Full::new(Bytes::copy_from_slice(
            body.unwrap_or("").as_bytes(),
        )))
        .map_err(|_| {
            TransportError::Failed(
                "the URL's host or path cannot be sent in an HTTP request; check the URL"
                    .to_owned(),
            )
        })
}

/// Status, reason, `Retry-After` and the body (at most `max_body` bytes).
async fn read(
    response: hyper::Response<hyper::body::Incoming>,
    max_body: usize,
) -> Result<(u16, String, Option<Duration>, Bytes), TransportError> {
    let too_large = || {
        TransportError::Failed(format!(
            "the server's answer is larger than {max_body} bytes; this is not the endpoint \
             expected, or the limit is too low for it"
        ))
    };
    let (head, body) = response.into_parts();
    let declared = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(too_large());
    }
    let reason = match head.extensions.get::<hyper::ext::ReasonPhrase>() {
        Some(r) => printable(r.as_bytes(), MAX_QUOTED_BODY),
        None => head.status.canonical_reason().unwrap_or("").to_owned(),
    };
    let retry_after = head
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = Limited::new(body, max_body)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                TransportError::Failed(format!(
                    "reading the server's answer failed: {}",
                    with_causes(e.as_ref())
                ))
            }
        })?
        .to_bytes();
    Ok((head.status.as_u16(), reason, retry_after, body))
}

/// A hyper error in words.
fn failed(what: &str, e: &hyper::Error) -> TransportError {
    TransportError::Failed(format!("{what} failed: {}", with_causes(e)))
}

/// An error with its causes (hyper's own message is terse: "error reading a body from
/// connection"; the cause says what was wrong).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut m = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        m.push_str(&format!(": {c}"));
        cause = c.source();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    fn call() -> Call {
        Call {
            max_body: MAX_BODY,
            timeout: Duration::from_secs(30),
            clock: Clock::System,
        }
    }

    #[tokio::test]
    async fn answers_are_read_by_length_by_chunks_and_to_the_end() {
        let (url, req) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}").await;
        let a = post(&spec(), &url, "{}", call()).await.unwrap();
        assert_eq!((a.code, &a.body[..]), (200, &b"{\"a\":1}"[..]));
        assert!(a.sent_ns > 0 && a.sent_ns <= a.done_ns);
        let req = req.await.unwrap().to_ascii_lowercase();
        assert!(
            req.starts_with("post /api/v1/bullet-public?x=1 http/1.1\r\n"),
            "{req}"
        );
        assert!(
            req.contains("\r\ncontent-length: 2\r\n") && req.contains("connection: close"),
            "{req}"
        );

        let (url, _) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"b\"\r\n3\r\n:2}\r\n0\r\n\r\n",
        )
        .await;
        let a = post(&spec(), &url, "{}", call()).await.unwrap();
        assert_eq!(&a.body[..], b"{\"b\":2}");

        let (url, _) = serve(b"HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\nlater").await;
        let a = post(&spec(), &url, "{}", call()).await.unwrap();
        assert_eq!((a.code, a.reason.as_str()), (503, "Busy"));
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
        let e = post(&spec(), &url, "{}", call())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("reading the server's answer failed") && e.contains("chunk"),
            "{e}"
        );
        let (url, _) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n").await;
        let e = post(&spec(), &url, "{}", call())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than 262144 bytes"), "{e}");
        let (url, _) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
        let e = post(&spec(), &url, "{}", call())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("reading the server's answer failed"), "{e}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_naming_the_wait() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/x", l.local_addr().unwrap())).unwrap();
        let _server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(tcp);
        });
        let mut c = call();
        c.timeout = Duration::from_millis(300);
        let e = get(&spec(), &url, c).await.unwrap_err().to_string();
        assert!(
            e.contains("no complete answer within 300ms (waiting for the answer"),
            "{e}"
        );
    }
}
