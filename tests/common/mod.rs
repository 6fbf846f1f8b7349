//! Shared pieces of the integration tests: an in-process WebSocket server on `127.0.0.1:0`
//! (tokio-tungstenite, a third-party implementation), a recorder started in-process, readers
//! for what it wrote, and its log lines (to check what an operator sees).
#![allow(dead_code, clippy::result_large_err)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use wsrec::observe::stats::Stats;
use wsrec::{Config, Recorder, StreamConfig};

/// A WebSocket server that hands every accepted connection to the test.
pub struct TestServer {
    pub addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<ServerConn>,
}

/// One accepted connection, driven by the test.
pub struct ServerConn {
    pub ws: WebSocketStream<TcpStream>,
    /// The request path of the upgrade.
    pub path: String,
    /// The handshake headers, lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl TestServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut path = String::new();
                    let mut headers = Vec::new();
                    let cb = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                              resp| {
                        path = req.uri().path().to_owned();
                        headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                            })
                            .collect();
                        Ok(resp)
                    };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await {
                        let _ = tx.send(ServerConn { ws, path, headers });
                    }
                });
            }
        });
        Self { addr, conns }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/feed", self.addr)
    }

    /// The next connection the recorder opens.
    pub async fn accept(&mut self) -> ServerConn {
        tokio::time::timeout(Duration::from_secs(30 * 86_400), self.conns.recv())
            .await
            .expect("no connection arrived")
            .expect("server stopped")
    }
}

impl ServerConn {
    /// The next text message from the client (pings are answered by tungstenite on read).
    pub async fn recv_text(&mut self) -> String {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Close(_))) | None => panic!("client closed before sending text"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("server read error: {e}"),
            }
        }
    }

    /// Reads until the client's close frame or EOF; returns the close code if any.
    pub async fn recv_close(&mut self) -> Option<u16> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws.send(Message::binary(data.to_vec())).await.unwrap();
    }

    /// Sends every message in one flush.
    pub async fn send_all(&mut self, texts: impl IntoIterator<Item = String>) {
        for t in texts {
            self.ws.feed(Message::text(t)).await.unwrap();
        }
        self.ws.flush().await.unwrap();
    }

    /// Like [`send_all`](Self::send_all), but reports a closed connection instead of panicking.
    pub async fn try_send_all(
        &mut self,
        texts: impl IntoIterator<Item = String>,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        for t in texts {
            self.ws.feed(Message::text(t)).await?;
        }
        self.ws.flush().await
    }

    pub async fn close(&mut self, code: u16, reason: &str) {
        let _ = self
            .ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            }))
            .await;
    }

    /// Drops the TCP connection without a close frame, after the data sent so far.
    pub async fn drop_abruptly(self) {
        let mut tcp = self.ws.into_inner();
        use tokio::io::AsyncWriteExt;
        let _ = tcp.flush().await;
        let _ = tcp.shutdown().await;
    }
}

/// A stream pointed at `url` with test-friendly settings: no pings, no silence timeout, fast
/// backoff.
pub fn stream(name: &str, url: &str) -> StreamConfig {
    let mut s = StreamConfig::new(name, url);
    s.ping_interval = None;
    s.silence_timeout = None;
    s.backoff_initial = Duration::from_millis(100);
    s.backoff_max = Duration::from_secs(1);
    s
}

/// A config for `streams` writing under `dir`, without status socket, status log, compression
/// or disk watermarks (tests that need them turn them on).
pub fn config(dir: &Path, streams: Vec<StreamConfig>) -> Config {
    Config {
        output_dir: dir.to_owned(),
        status_socket: Some(PathBuf::new()),
        status_interval: None,
        compress: wsrec::config::Compress::None,
        disk_warn: None,
        disk_stop: None,
        streams,
        ..Config::default()
    }
}

/// A running in-process recorder.
pub struct Running {
    pub shutdown: CancellationToken,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<Result<(), wsrec::RunError>>,
}

/// 2026-11-24T10:59:50Z: ten seconds before an hour boundary.
pub const BASE_NS: u64 = 1_795_517_990_000_000_000;

/// Starts a recorder whose clock follows tokio time, starting at `base_ns`.
pub fn start(config: Config, base_ns: u64) -> Running {
    capture_logs();
    let recorder = Recorder::new(config)
        .unwrap()
        .with_clock(wsrec::clock::Clock::tokio(base_ns));
    let stats = recorder.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(recorder.run(shutdown.clone()));
    Running {
        shutdown,
        stats,
        task,
    }
}

impl Running {
    /// Stops the recorder and waits until every file is closed.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Waits for the recorder to stop on its own (bounded by 60 s of real time) and returns
    /// what `run` returned.
    pub async fn finish(self) -> Result<(), wsrec::RunError> {
        let limit = Duration::from_secs(60);
        let ran = tokio::time::timeout(limit, self.task).await;
        ran.expect("the recorder did not stop on its own").unwrap()
    }

    /// Waits until the recorder has received `n` messages on stream 0.
    pub async fn wait_messages(&self, n: u64) {
        self.wait_until(|s| {
            s.streams[0]
                .messages
                .load(std::sync::atomic::Ordering::Relaxed)
                >= n
        })
        .await;
    }

    /// Polls `cond` on the live counters until it holds (bounded by 60 s of real time).
    ///
    /// Each round lets paused time move 1 ms (for the recorder's timers) and real time a
    /// moment (for its OS threads: the compressor runs at idle priority and only gets a core
    /// when this task stops spinning).
    pub async fn wait_until(&self, cond: impl Fn(&Stats) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut round = 0u64;
        while std::time::Instant::now() < deadline {
            if cond(&self.stats) {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
            round += 1;
            if round.is_multiple_of(64) {
                tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(1)))
                    .await
                    .unwrap();
            }
        }
        panic!("condition not reached: {:?}", self.stats.snapshot());
    }
}

/// The manifest wsrec writes for the sealed file `data` (compressed or not): its name without
/// compression suffix and `.jsonl`/`.ndjson` extension, plus `.manifest.json`
/// (`x.jsonl.zst` -> `x.manifest.json`, `x.events.ndjson` -> `x.events.manifest.json`).
#[allow(dead_code)]
pub fn manifest_path(data: &Path) -> PathBuf {
    let s = data.to_string_lossy();
    let plain = s.trim_end_matches(".zst").trim_end_matches(".gz");
    let stem = plain
        .strip_suffix(".jsonl")
        .or_else(|| plain.strip_suffix(".ndjson"))
        .unwrap_or(plain);
    PathBuf::from(format!("{stem}.manifest.json"))
}

/// Every recording file under `dir` (recursively, manifests left out), sorted by path.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().ends_with(".manifest.json"))
        .collect()
}

/// Asserts that no recording file under `dir` is still `.open` (every one was closed).
pub fn no_open_files(dir: &Path) {
    let open: Vec<PathBuf> = files(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".open"))
        .collect();
    assert!(open.is_empty(), "left open: {open:?}");
}

/// The text of a recording file, decompressed if it is `.zst` or `.gz`.
pub fn read_text(path: &Path) -> String {
    use std::io::Read;
    let f = std::fs::File::open(path).unwrap();
    let mut out = String::new();
    let name = path.to_string_lossy();
    if name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(f)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
    } else if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(f)
            .read_to_string(&mut out)
            .unwrap();
    } else {
        std::io::BufReader::new(f).read_to_string(&mut out).unwrap();
    }
    out
}

/// Every file under `dir` (recursively), sorted by path.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every line of every `.jsonl` and `.events.ndjson` file (maybe compressed) under `dir`, parsed, in file then line order; panics on
/// a line that is not JSON.
pub fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for f in files(dir) {
        let name = f.to_string_lossy();
        let plain = name.trim_end_matches(".zst").trim_end_matches(".gz");
        if !(plain.ends_with(".jsonl") || plain.ends_with(".events.ndjson")) {
            continue;
        }
        for (i, line) in read_text(&f).lines().enumerate() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {line}", f.display(), i + 1));
            out.push(v);
        }
    }
    out
}

/// The `msg` values of message records, as compact JSON text.
pub fn messages(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r.get("msg").map(|m| m.to_string()))
        .collect()
}

/// Event records named `name`.
pub fn events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r.get("event").and_then(Value::as_str) == Some(name))
        .collect()
}

/// `n` small distinct JSON messages starting at `from`.
pub fn numbered(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| format!(r#"{{"n":{i},"p":"x"}}"#))
        .collect()
}

/// The number of a process that has ended and was reaped: it names no process now (what a
/// killed tool's leftovers carry).
pub fn ended_process() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

/// The frames of a corpus file (real exchange frames, one per line; see
/// tests/fixtures/corpus/SOURCES.md).
pub fn corpus(name: &str) -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus");
    std::fs::read_to_string(format!("{dir}/{name}"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A Python interpreter that can import `module`, found like the interop tests' (the
/// `WSREC_INTEROP_PYTHON` interpreter, default `python3`, with `WSREC_INTEROP_PYTHONPATH`, default
/// `target/interop/python`). Missing, the test fails, saying what `package` is needed for
/// (`purpose`) and how to install it: a test that cannot run must not pass.
pub fn python_with(module: &str, package: &str, purpose: &str) -> std::process::Command {
    let lib = std::env::var_os("WSREC_INTEROP_PYTHONPATH").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop/python"),
        PathBuf::from,
    );
    let interpreter = std::env::var_os("WSREC_INTEROP_PYTHON").unwrap_or_else(|| "python3".into());
    let ok = std::process::Command::new(&interpreter)
        .env("PYTHONPATH", &lib)
        .args(["-c", &format!("import {module}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Python {package} is needed {purpose}, and {} with PYTHONPATH={} cannot import {module}. \
         Install it with `bash scripts/test.sh` (it pip-installs it into target/interop/python), \
         or `python3 -m pip install --target target/interop/python '{package}'`, or set \
         WSREC_INTEROP_PYTHON and WSREC_INTEROP_PYTHONPATH to an interpreter and a directory \
         that have it.",
        interpreter.to_string_lossy(),
        lib.display()
    );
    let mut cmd = std::process::Command::new(&interpreter);
    cmd.env("PYTHONPATH", &lib);
    cmd
}

/// The `kind` of every issue in a `wsrec verify --json` report.
pub fn issue_kinds(report: &Value) -> Vec<&str> {
    report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect()
}

/// `wsrec status --json` of the recorder serving `socket`: its snapshot, or what the command
/// said when it failed (no recorder there yet, for one).
pub fn status_json(socket: &Path) -> Result<Value, String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsrec"))
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Logs.

/// The log lines of every recorder this test binary started (INFO and up).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Appends to [`LOGS`].
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs this test binary's log subscriber, once: INFO and up into [`LOGS`] whatever
/// `RUST_LOG` says (tests check those lines), and to the test output as `RUST_LOG` says.
/// [`start`] calls it, so no recorder can log past the buffer; a test that starts the
/// recorder another way calls it first.
pub fn capture_logs() {
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(|| LogWriter)
                    .with_filter(EnvFilter::new("info")),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(EnvFilter::from_default_env()),
            )
            .try_init();
    });
}

/// The captured log lines about stream `name` (tests run in parallel: give each its own name).
pub fn log_lines(name: &str) -> Vec<String> {
    let needle = format!("stream={name} ");
    let text =
        String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    text.lines()
        .filter(|l| l.contains(&needle) || l.ends_with(&format!("stream={name}")))
        .map(str::to_owned)
        .collect()
}

/// Asserts that some log line about `stream` contains every one of `parts`.
pub fn assert_logged(stream: &str, parts: &[&str]) {
    let lines = log_lines(stream);
    assert!(
        lines.iter().any(|l| parts.iter().all(|p| l.contains(p))),
        "no log line for stream {stream} contains {parts:?}; lines:\n{}",
        lines.join("\n")
    );
}
