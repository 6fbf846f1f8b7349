//! The REST client (`wsrec::net::transport::http`, hyper over wsrec's own dial) against real
//! servers on loopback: answers by length and in chunks, a body over the limit, 429 with
//! `Retry-After`, 503 then 200 (each answer reaches the caller), through an HTTP CONNECT proxy,
//! and https with a private CA given by `ca_file`.
//!
//! Real time: every request races a 30 s timeout it never needs.

mod common;
mod peers;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peers::{Pki, ProxyMode, little_proxy, tls_server_config};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use wsrec::clock::Clock;
use wsrec::config::StreamConfig;
use wsrec::net::transport::ConnectSpec;
use wsrec::net::transport::http::{self, Answer, Call};

/// What the test server saw: one request head per connection, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A server on 127.0.0.1:0 that answers its n-th connection with `replies[n]` (written in
/// pieces of at most 1000 bytes, so the client reassembles), then closes; over TLS with
/// `tls`. Returns its address and the request heads it saw.
async fn serve(
    replies: Vec<Vec<u8>>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        for reply in replies {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            match &tls {
                None => answer(tcp, &reply, &log).await,
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                    // A refused handshake is what one test wants: nothing to answer then.
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        answer(stream, &reply, &log).await;
                    }
                }
            }
        }
    });
    (addr, seen)
}

/// Reads one request head, notes it, writes `reply` in pieces, and closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, reply: &[u8], seen: &Seen) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if io.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    seen.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    for piece in reply.chunks(1000) {
        if io.write_all(piece).await.is_err() || io.flush().await.is_err() {
            return;
        }
    }
    let _ = io.shutdown().await;
}

/// An answer with `status` (code and reason), extra `headers` (each ending in CRLF), and
/// `body` with its `Content-Length`.
fn reply(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A 200 answer with a JSON `body`.
fn ok(body: &[u8]) -> Vec<u8> {
    reply("200 OK", "Content-Type: application/json\r\n", body)
}

/// A 200 answer with `body` in chunks of `size` bytes, each size line carrying `ext`.
fn chunked(body: &[u8], size: usize, ext: &str) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(size) {
        r.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
        r.extend_from_slice(chunk);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

/// A JSON body of about `size` bytes, shaped like a depth snapshot.
fn depth_body(size: usize) -> Vec<u8> {
    let mut b = String::from(r#"{"lastUpdateId":1027024,"bids":["#);
    let mut i = 0;
    while b.len() < size {
        if i > 0 {
            b.push(',');
        }
        b.push_str(&format!(r#"["{}.00000000","431.00000000"]"#, 40000 + i));
        i += 1;
    }
    b.push_str(r#"],"asks":[]}"#);
    b.into_bytes()
}

/// The dialling settings of a stream at `ws_url` (its TLS, CA file and proxy apply).
fn spec(ws_url: &str, set: impl FnOnce(&mut StreamConfig)) -> ConnectSpec {
    let mut s = StreamConfig::new("rest", ws_url);
    set(&mut s);
    ConnectSpec::from_config(&s).unwrap()
}

fn call(max_body: usize) -> Call {
    Call {
        max_body,
        timeout: Duration::from_secs(30),
        clock: Clock::System,
    }
}

fn url(addr: SocketAddr, scheme: &str, path: &str) -> url::Url {
    url::Url::parse(&format!("{scheme}://{addr}{path}")).unwrap()
}

async fn get(spec: &ConnectSpec, u: &url::Url, max_body: usize) -> Result<Answer, String> {
    http::get(spec, u, call(max_body))
        .await
        .map_err(|e| e.to_string())
}

/// GETs [`DEPTH`] from the plain server at `addr`, with a plain stream's settings.
async fn get_depth(addr: SocketAddr) -> Answer {
    get(
        &spec("ws://127.0.0.1:1/", |_| {}),
        &url(addr, "http", DEPTH),
        SNAPSHOT_MAX,
    )
    .await
    .unwrap()
}

const DEPTH: &str = "/api/v3/depth?symbol=BTCUSDT&limit=5000";
const SNAPSHOT_MAX: usize = 16 << 20;

#[tokio::test]
async fn a_large_answer_with_content_length_arrives_whole_with_its_times() {
    // limit=5000 answers run to several hundred KB.
    let body = depth_body(600 * 1024);
    let (addr, seen) = serve(vec![ok(&body)], None).await;
    let before = wsrec::clock::system_now_ns();
    let a = get_depth(addr).await;
    let after = wsrec::clock::system_now_ns();
    assert_eq!(
        (a.code, a.reason.as_str(), a.retry_after),
        (200, "OK", None)
    );
    assert!(a.body == body, "the body differs ({} bytes)", a.body.len());
    assert!(before <= a.sent_ns && a.sent_ns <= a.done_ns && a.done_ns <= after);
    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.starts_with(&format!("get {} http/1.1\r\n", DEPTH.to_ascii_lowercase())),
        "{head}"
    );
    assert!(head.contains(&format!("\r\nhost: {addr}\r\n")), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
}

#[tokio::test]
async fn a_chunked_answer_is_decoded() {
    let body = depth_body(50 * 1024);
    let (addr, _) = serve(vec![chunked(&body, 777, ";x=y")], None).await;
    let a = get_depth(addr).await;
    assert_eq!(a.code, 200);
    assert!(a.body == body, "the body differs ({} bytes)", a.body.len());
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_clear_error() {
    let body = depth_body(20 * 1024);
    // Declared, and in chunks (the size known only as it comes).
    let (addr, _) = serve(vec![ok(&body), chunked(&body, 1024, ""), ok(&body)], None).await;
    let spec = spec("ws://127.0.0.1:1/", |_| {});
    let u = url(addr, "http", DEPTH);
    for _ in 0..2 {
        let e = get(&spec, &u, 16 * 1024).await.unwrap_err();
        assert!(
            e.contains("answer is larger than 16384 bytes") && !e.contains("127.0.0.1"),
            "{e}"
        );
    }
    // The same answer fits a larger limit.
    assert_eq!(
        get(&spec, &u, 32 * 1024).await.unwrap().body.len(),
        body.len()
    );
}

#[tokio::test]
async fn a_429_comes_back_with_its_retry_after() {
    let (addr, _) = serve(
        vec![
            reply(
                "429 Too Many Requests",
                "Retry-After: 7\r\n",
                br#"{"code":-1003,"msg":"Too many requests."}"#,
            ),
            reply(
                "418 I'm a teapot",
                "Retry-After: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
                b"",
            ),
        ],
        None,
    )
    .await;
    let spec = spec("ws://127.0.0.1:1/", |_| {});
    let a = get(&spec, &url(addr, "http", DEPTH), SNAPSHOT_MAX)
        .await
        .unwrap();
    assert_eq!(
        (a.code, a.reason.as_str(), a.retry_after),
        (429, "Too Many Requests", Some(Duration::from_secs(7)))
    );
    assert!(a.quoted_body().contains("Too many requests."), "{a:?}");
    // An HTTP date in the past means now.
    let a = get(&spec, &url(addr, "http", DEPTH), SNAPSHOT_MAX)
        .await
        .unwrap();
    assert_eq!((a.code, a.retry_after), (418, Some(Duration::ZERO)));
}

#[tokio::test]
async fn a_503_then_a_200_each_reach_the_caller() {
    let (addr, seen) = serve(
        vec![
            reply("503 Service Unavailable", "", b"busy"),
            ok(b"{\"lastUpdateId\":1}"),
        ],
        None,
    )
    .await;
    let spec = spec("ws://127.0.0.1:1/", |_| {});
    let u = url(addr, "http", DEPTH);
    let first = get(&spec, &u, SNAPSHOT_MAX).await.unwrap();
    assert_eq!((first.code, &first.body[..]), (503, &b"busy"[..]));
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the client retried on its own"
    );
    let second = get(&spec, &u, SNAPSHOT_MAX).await.unwrap();
    assert_eq!(
        (second.code, &second.body[..]),
        (200, &b"{\"lastUpdateId\":1}"[..])
    );
    assert!(first.done_ns <= second.sent_ns);
}

#[tokio::test]
async fn a_post_sends_its_json_body() {
    let (addr, seen) = serve(vec![ok(b"{}")], None).await;
    let a = http::post(
        &spec("ws://127.0.0.1:1/", |_| {}),
        &url(addr, "http", "/api/v1/bullet-public"),
        "{}",
        call(http::MAX_BODY),
    )
    .await
    .unwrap();
    assert_eq!(a.code, 200);
    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.starts_with("post /api/v1/bullet-public http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\ncontent-length: 2\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
}

#[tokio::test]
async fn requests_go_through_the_streams_proxy() {
    let (addr, seen) = serve(vec![ok(b"{\"via\":\"proxy\"}")], None).await;
    let (proxy, asked) = little_proxy(ProxyMode::Tunnel(None)).await;
    let spec = spec("ws://127.0.0.1:1/", |s| {
        s.proxy = Some(wsrec::config::ProxySetting::Url(format!("http://{proxy}")));
    });
    let a = get(&spec, &url(addr, "http", DEPTH), SNAPSHOT_MAX)
        .await
        .unwrap();
    assert_eq!(&a.body[..], b"{\"via\":\"proxy\"}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].starts_with(&format!("CONNECT {addr} HTTP/1.1\r\n")),
        "{asked:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn https_trusts_the_streams_ca_file_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "rest");
    let (cert, key) = pki.leaf("rest", &["localhost"], false);
    let body = depth_body(100 * 1024);
    let (addr, seen) = serve(
        vec![ok(&body), ok(&body)],
        Some(tls_server_config(&cert, &key)),
    )
    .await;
    let u = url::Url::parse(&format!("https://localhost:{}{DEPTH}", addr.port())).unwrap();
    // A wss:// stream's TLS settings: its ca_file is trusted.
    let trusting = spec("wss://localhost:1/", |s| {
        s.ca_file = Some(pki.ca_pem.clone())
    });
    let a = get(&trusting, &u, SNAPSHOT_MAX).await.unwrap();
    assert_eq!(a.code, 200);
    assert!(a.body == body);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Without it the private CA is refused, with the fix named.
    let plain = spec("wss://localhost:1/", |_| {});
    let e = get(&plain, &u, SNAPSHOT_MAX).await.unwrap_err();
    assert!(
        e.contains("does not trust") && e.contains("set ca_file"),
        "{e}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a request went over the refused TLS"
    );
}
