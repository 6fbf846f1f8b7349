//! Issue 21: one-line mode (`wsrec record URL`)
//! stops when the stream's first connection fails in a way retrying does not fix (a 4xx other
//! than 408 and 429, a 301 or 308, a rejected certificate), exits with code 2 and says why and
//! how to fix it; `--retry`, a config file, a 429 and a stream that has connected once keep
//! retrying. A stream that gives up takes the recorder down in order: the other streams lose
//! nothing.
//!
//! The binary runs against servers on 127.0.0.1:0 that answer each upgrade as the test says;
//! every wait is for something that happens (a connection at the server, the process's exit).

mod common;
mod peers;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for the recorder to do something before it fails.
const LIMIT: Duration = Duration::from_secs(60);

/// How the server answers one upgrade request.
#[derive(Clone, Copy)]
enum Answer {
    /// Completes the handshake, sends one message and closes.
    Accept,
    /// Answers with this HTTP status line (`404 Not Found`) and closes.
    Refuse(&'static str),
}

/// A server on 127.0.0.1:0 that answers the n-th connection with `script[n]` (the last
/// answer for every connection beyond the script) and reports each connection.
struct Scripted {
    url: String,
    /// The number (0-based) of each connection, once its request has been read.
    attempts: mpsc::UnboundedReceiver<usize>,
}

impl Scripted {
    async fn start(path: &str, script: Vec<Answer>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}{path}", listener.local_addr().unwrap());
        let (tx, attempts) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                let answer = script[n.min(script.len() - 1)];
                let tx = tx.clone();
                tokio::spawn(async move {
                    match answer {
                        Answer::Accept => accept(tcp).await,
                        Answer::Refuse(status) => refuse(tcp, status).await,
                    }
                    let _ = tx.send(n);
                });
                n += 1;
            }
        });
        Scripted { url, attempts }
    }

    /// Waits for connection number `n` (0-based) to have been answered.
    async fn answered(&mut self, n: usize) {
        loop {
            let got = tokio::time::timeout(LIMIT, self.attempts.recv())
                .await
                .unwrap_or_else(|_| panic!("connection {n} did not come"))
                .unwrap();
            if got >= n {
                return;
            }
        }
    }
}

/// Completes the WebSocket handshake, sends one message and closes.
async fn accept(tcp: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let _ = ws.send(Message::text(r#"{"hello":1}"#)).await;
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

/// Reads the upgrade request and answers it with `status` (`404 Not Found`), then closes.
async fn refuse(mut tcp: TcpStream, status: &str) {
    peers::read_request(&mut tcp).await;
    let body = "no WebSocket here";
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(reply.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// The `wsrec` binary, run in `dir` with stdout and stderr in files there.
struct Wsrec {
    pid: i32,
    exit: tokio::task::JoinHandle<ExitStatus>,
    dir: PathBuf,
}

impl Wsrec {
    fn spawn(args: &[&str], dir: &Path) -> Wsrec {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsrec"))
            .env_remove("RUST_LOG")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let exit = tokio::task::spawn_blocking(move || child.wait().unwrap());
        Wsrec {
            pid,
            exit,
            dir: dir.to_owned(),
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid we started and a valid signal number.
        let rc = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(rc, 0);
    }

    /// Waits for the process to exit on its own (bounded) and returns its exit code.
    async fn exit_code(mut self) -> i32 {
        match tokio::time::timeout(LIMIT, &mut self.exit).await {
            Ok(status) => status.unwrap().code().unwrap_or(-1),
            Err(_) => {
                self.signal(libc::SIGKILL);
                panic!("wsrec did not exit; stderr: {}", stderr(&self.dir));
            }
        }
    }

    /// Sends SIGTERM and returns the exit code.
    async fn stop(self) -> i32 {
        self.signal(libc::SIGTERM);
        self.exit_code().await
    }
}

fn stderr(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
}

/// The last line of stderr: the error `wsrec` exits with.
fn error_line(dir: &Path) -> String {
    let text = stderr(dir);
    text.lines()
        .rev()
        .find(|l| l.starts_with("wsrec: error:"))
        .unwrap_or_else(|| panic!("no error line; stderr: {text}"))
        .to_owned()
}

/// One-line mode against a server that refuses with `status`: exits 2 after one attempt, with
/// the URL, the status and the fixes in the error; the attempt is in the recording, closed.
async fn one_line_refused_exits_2(status: &'static str, fix: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut server = Scripted::start("/wrong-path", vec![Answer::Refuse(status)]).await;
    let wsrec = Wsrec::spawn(&["record", &server.url, "-o", "out", "--name", "feed"], d);
    assert_eq!(wsrec.exit_code().await, 2, "stderr: {}", stderr(d));
    let line = error_line(d);
    for want in [
        "stream `feed`",
        server.url.as_str(),
        &format!("HTTP {status}"),
        fix,
        "--retry",
    ] {
        assert!(line.contains(want), "{want:?} missing from {line:?}");
    }
    server.answered(0).await;
    assert!(
        server.attempts.try_recv().is_err(),
        "one attempt, not retried"
    );
    let out = d.join("out");
    no_open_files(&out);
    let recs = records(&out);
    let failed = events(&recs, "connect_failed");
    let code: u64 = status[..3].parse().unwrap();
    assert_eq!(failed.len(), 1, "{recs:?}");
    assert_eq!(failed[0]["http_status"], code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_404_exits_2_naming_the_url_status_and_fix() {
    one_line_refused_exits_2("404 Not Found", "check the URL path").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_401_exits_2_naming_the_credentials() {
    one_line_refused_exits_2("401 Unauthorized", "credentials").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_410_exits_2_with_the_generic_fix() {
    one_line_refused_exits_2("410 Gone", "check the URL and the headers").await;
}

/// The binary started with `args` (given the server's URL and the directory it runs in)
/// against a server that answers with `script` keeps
/// retrying: a third connection comes, and SIGTERM then stops it cleanly.
async fn keeps_retrying(script: Vec<Answer>, args: impl Fn(&str, &Path) -> Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut server = Scripted::start("/wrong-path", script).await;
    let args = args(&server.url, d);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut wsrec = Wsrec::spawn(&args, d);
    tokio::select! {
        () = server.answered(2) => {}
        status = &mut wsrec.exit => panic!("wsrec exited ({:?}) instead of retrying; stderr: {}", status.unwrap(), stderr(d)),
    }
    assert_eq!(wsrec.stop().await, 0, "stderr: {}", stderr(d));
    no_open_files(&d.join("out"));
}

fn one_line(url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["record", url, "-o", "out"];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_flag_keeps_retrying_a_404() {
    keeps_retrying(vec![Answer::Refuse("404 Not Found")], |url, _| {
        one_line(url, &["--retry"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_in_one_line_mode() {
    keeps_retrying(vec![Answer::Refuse("429 Too Many Requests")], |url, _| {
        one_line(url, &[])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_connected_once_retries_a_404() {
    keeps_retrying(
        vec![Answer::Accept, Answer::Refuse("404 Not Found")],
        |url, _| one_line(url, &[]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_retries_a_404() {
    keeps_retrying(vec![Answer::Refuse("404 Not Found")], |url, dir| {
        let path = dir.join("wsrec.toml");
        let toml =
            format!("output_dir = \"out\"\n\n[[stream]]\nname = \"feed\"\nurl = \"{url}\"\n");
        std::fs::write(&path, toml).unwrap();
        vec![
            "record".to_owned(),
            "-c".to_owned(),
            path.to_string_lossy().into_owned(),
        ]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_line_with_an_untrusted_certificate_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pki = peers::Pki::new(d, "unknown");
    let (cert, key) = pki.leaf("unknown", &["localhost"], false);
    let acceptor = tokio_rustls::TlsAcceptor::from(peers::tls_server_config(&cert, &key));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut handshakes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // The client rejects the certificate: the handshake fails, as it should.
            let _ = acceptor.accept(tcp).await;
            let _ = tx.send(());
        }
    });
    let url = format!("wss://localhost:{port}/secure");
    let wsrec = Wsrec::spawn(&["record", &url, "-o", "out", "--name", "tls"], d);
    assert_eq!(wsrec.exit_code().await, 2, "stderr: {}", stderr(d));
    let line = error_line(d);
    for want in [url.as_str(), "does not trust", "ca_file", "--retry"] {
        assert!(line.contains(want), "{want:?} missing from {line:?}");
    }
    handshakes.recv().await.unwrap();
    assert!(handshakes.try_recv().is_err(), "one attempt, not retried");
    no_open_files(&d.join("out"));
}

/// In-process: a stream that gives up stops the recorder in order, and the other stream's
/// messages, received before, are all in its closed files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_gives_up_stops_the_recorder_and_the_others_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    let mut good = TestServer::start().await;
    // The refusal waits until the good stream's messages are in.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bad_url = format!("ws://{}/wrong", listener.local_addr().unwrap());
    let (go, release) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = release.await;
        refuse(tcp, "404 Not Found").await;
    });
    let mut bad = stream("bad", &bad_url);
    bad.stop_on_refusal = true;
    let rec = start(
        config(&out, vec![stream("good", &good.url()), bad]),
        BASE_NS,
    );
    let mut conn = good.accept().await;
    conn.send_all(numbered(0, 500)).await;
    rec.wait_messages(500).await;
    go.send(()).unwrap();

    let err = rec.finish().await.unwrap_err();
    let wsrec::RunError::Refused(refused) = &err else {
        panic!("unexpected error: {err}");
    };
    assert_eq!(refused.stream, "bad");
    assert_eq!(refused.refusal.url, bad_url);
    assert_eq!(refused.refusal.http_status, Some(404));
    let text = err.to_string();
    assert!(
        text.contains(&bad_url) && text.contains("HTTP 404 Not Found"),
        "{text}"
    );
    // The good connection was closed by the recorder, not by the server.
    assert_eq!(conn.recv_close().await, Some(1001));

    no_open_files(&out);
    let recs = records(&out);
    let good_recs: Vec<_> = recs
        .iter()
        .filter(|r| r["stream"] == "good")
        .cloned()
        .collect();
    assert_eq!(messages(&good_recs), numbered(0, 500));
    let disc = events(&good_recs, "disconnected");
    assert_eq!(disc.len(), 1);
    assert_eq!(disc[0]["reason"], "shutdown");
    let failed: Vec<_> = events(&recs, "connect_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["stream"], "bad");
    assert_eq!(failed[0]["http_status"], 404);
}
