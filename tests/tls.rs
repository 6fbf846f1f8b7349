//! `wss://` against an in-process TLS server (rustls + tokio-tungstenite) with certificates from
//! a test CA made here: a private CA given by `ca_file` works; a wrong host name, an expired
//! certificate and an unknown CA each fail with a clear error, recorded as `connect_failed` and
//! logged, and are retried; `insecure` connects and warns at every connect.
//!
//! Real time: the handshakes race their timeouts over real sockets.

mod common;
mod peers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use common::*;
use futures::SinkExt;
use peers::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type TlsWs = WebSocketStream<tokio_rustls::server::TlsStream<TcpStream>>;

/// A wss server on 127.0.0.1:0 presenting one certificate.
struct TlsServer {
    port: u16,
    conns: mpsc::UnboundedReceiver<TlsWs>,
    /// TCP connections accepted (TLS handshakes attempted).
    attempts: Arc<AtomicUsize>,
}

impl TlsServer {
    async fn start(config: Arc<rustls::ServerConfig>) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, conns) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Relaxed);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A refused handshake is the point of several tests: nothing to report here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_async(tls).await {
                        let _ = tx.send(ws);
                    }
                });
            }
        });
        TlsServer {
            port,
            conns,
            attempts,
        }
    }

    async fn accept(&mut self) -> TlsWs {
        tokio::time::timeout(Duration::from_secs(30), self.conns.recv())
            .await
            .expect("no wss connection within 30 s")
            .unwrap()
    }
}

/// Records two messages over wss from a server presenting `cert`, with `configure` applied to
/// the stream; returns the recording.
async fn record_over_tls(
    name: &str,
    host: &str,
    cert: (std::path::PathBuf, std::path::PathBuf),
    configure: impl FnOnce(&mut wsrec::StreamConfig),
) -> Vec<serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = TlsServer::start(tls_server_config(&cert.0, &cert.1)).await;
    let mut s = stream(name, &format!("wss://{host}:{}/secure", server.port));
    configure(&mut s);
    let rec = start(config(tmp.path(), vec![s]), BASE_NS);
    let mut ws = server.accept().await;
    ws.send(Message::text(r#"{"secure":true}"#)).await.unwrap();
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    wait_for(&rec, Duration::from_secs(30), |s| {
        s.streams[0].messages.load(Relaxed) >= 2
    })
    .await;
    rec.stop().await;
    records(tmp.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_file_trusts_a_private_ca() {
    capture_logs();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "private");
    let cert = pki.leaf("localhost", &["localhost"], false);
    let recs = record_over_tls("tls-ca", "localhost", cert, |s| {
        s.ca_file = Some(pki.ca_pem.clone());
    })
    .await;
    assert_eq!(messages(&recs), [r#"{"secure":true}"#]);
    assert_eq!(events(&recs, "connect_failed").len(), 0);
    assert!(
        !log_lines("tls-ca")
            .iter()
            .any(|l| l.contains("VERIFICATION IS OFF")),
        "no insecure warning when verifying"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_address_urls_are_checked_against_ip_names() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "ip");
    let cert = pki.leaf("ip", &["127.0.0.1"], false);
    let recs = record_over_tls("tls-ip", "127.0.0.1", cert, |s| {
        s.ca_file = Some(pki.ca_pem.clone());
    })
    .await;
    assert_eq!(messages(&recs), [r#"{"secure":true}"#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_connects_to_an_unknown_ca_and_warns_at_every_connect() {
    capture_logs();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "stranger");
    let cert = pki.leaf("elsewhere", &["elsewhere.example"], true);
    // Unknown CA, wrong name and expired: insecure skips all of it.
    let recs = record_over_tls("tls-insecure", "localhost", cert, |s| {
        s.insecure = true;
    })
    .await;
    assert_eq!(messages(&recs), [r#"{"secure":true}"#]);
    assert_logged(
        "tls-insecure",
        &["WARN", "TLS CERTIFICATE VERIFICATION IS OFF"],
    );
}

/// Starts a wss server with `cert`, points a stream at `host` (with `ca_file` if given), and
/// checks that attempts fail with an error containing `want`, in the data and in the logs,
/// and are retried, with nothing recorded as connected.
async fn refused(
    name: &str,
    host: &str,
    cert: (std::path::PathBuf, std::path::PathBuf),
    ca_file: Option<std::path::PathBuf>,
    want: &[&str],
) {
    capture_logs();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    std::fs::create_dir_all(&out).unwrap();
    let server = TlsServer::start(tls_server_config(&cert.0, &cert.1)).await;
    let mut s = stream(name, &format!("wss://{host}:{}/secure", server.port));
    s.ca_file = ca_file;
    s.backoff_initial = Duration::from_millis(50);
    s.backoff_max = Duration::from_millis(200);
    let rec = start(config(&out, vec![s]), BASE_NS);
    wait_for(&rec, Duration::from_secs(30), |s| {
        s.streams[0].connect_failures.load(Relaxed) >= 3
    })
    .await;
    let last_error = rec.stats.snapshot().streams[0].last_error.clone();
    rec.stop().await;

    assert!(server.attempts.load(Relaxed) >= 3, "retried");
    let recs = records(&out);
    assert_eq!(events(&recs, "connected").len(), 0, "never connected");
    let failed = events(&recs, "connect_failed");
    assert!(failed.len() >= 3, "{failed:?}");
    for f in &failed {
        let error = f["error"].as_str().unwrap();
        for w in want {
            assert!(error.contains(w), "error {error:?} lacks {w:?}");
        }
    }
    for w in want {
        assert!(
            last_error.contains(w),
            "status last_error {last_error:?} lacks {w:?}"
        );
    }
    let mut parts = vec!["WARN", "Connection attempt failed."];
    parts.extend_from_slice(want);
    assert_logged(name, &parts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_host_name_fails_clearly_and_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "name");
    let cert = pki.leaf("other", &["other.example"], false);
    refused(
        "tls-name",
        "localhost",
        cert,
        Some(pki.ca_pem.clone()),
        &["not valid for that host name", "other.example"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_fails_clearly_and_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "expired");
    let cert = pki.leaf("old", &["localhost"], true);
    refused(
        "tls-expired",
        "localhost",
        cert,
        Some(pki.ca_pem.clone()),
        &["has expired", "must renew"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_fails_clearly_and_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "unknown");
    let cert = pki.leaf("unknown", &["localhost"], false);
    refused(
        "tls-unknown-ca",
        "localhost",
        cert,
        None,
        &["does not trust", "set ca_file"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_to_a_plain_port_says_so() {
    capture_logs();
    let tmp = tempfile::tempdir().unwrap();
    // A plain WebSocket server: its answer to a TLS ClientHello is not TLS.
    let server = TestServer::start().await;
    let mut s = stream("tls-plain", &format!("wss://{}/feed", server.addr));
    s.handshake_timeout = Duration::from_secs(5);
    let rec = start(config(tmp.path(), vec![s]), BASE_NS);
    wait_for(&rec, Duration::from_secs(30), |s| {
        s.streams[0].connect_failures.load(Relaxed) >= 1
    })
    .await;
    rec.stop().await;
    let recs = records(tmp.path());
    let error = events(&recs, "connect_failed")[0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("is this port speaking TLS"), "{error}");
}
