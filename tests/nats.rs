//! The live fan-out against a real `nats-server` with JetStream (Debian package `nats-server`,
//! installed by `scripts/test.sh`), on 127.0.0.1 with its storage in a temporary directory.
//! Without the binary these tests fail, saying how to install it.
//!
//! Real time throughout: the client's timeouts and the server are real.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use wsrec::observe::stats::Stats;
use wsrec::ship::nats::{NatsConfig, NatsState};

/// The JetStream stream the recorder is asked to create.
const STREAM: &str = "WSREC";

/// An hour boundary is 50 minutes away: no rotation during a test.
const BASE: u64 = BASE_NS + 20_000_000_000;

fn nats_server_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server is not installed: these tests need a real NATS server with \
                 JetStream. Run `bash scripts/test.sh` (it installs it) or \
                 `apt-get install nats-server`."
            )
        })
}

/// A `nats-server -js` on 127.0.0.1, storing under `dir`.
struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl NatsServer {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self {
            child: None,
            port,
            dir: dir.to_owned(),
        };
        s.restart();
        s
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again: same port, same storage) and waits until it accepts
    /// connections.
    fn restart(&mut self) {
        assert!(self.child.is_none());
        let child = Command::new(nats_server_bin())
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nats-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nats-server exited at start: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server does not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server the way an operator would (SIGTERM) and waits for it to exit.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("not running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a [`SwallowingProxy`] leaves out in one direction: the next frame whose payload
/// contains these bytes.
type Target = Arc<Mutex<Option<Vec<u8>>>>;

/// A TCP proxy in front of nats-server that passes both directions through unchanged, except
/// one frame it is told to swallow. A swallowed publish is a line the server never sees while
/// it gets the lines the client pipelines after it on the same connection: what a server that
/// misses the start of a window (restarting, reconnecting) does, made deterministic. A
/// swallowed delivery is an ack lost on the way back.
struct SwallowingProxy {
    port: u16,
    publish: Target,
    delivery: Target,
    swallowed: Arc<tokio::sync::Notify>,
}

impl SwallowingProxy {
    async fn start(server_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let publish = Target::default();
        let delivery = Target::default();
        let swallowed = Arc::new(tokio::sync::Notify::new());
        let (p, d, n) = (publish.clone(), delivery.clone(), swallowed.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", server_port)).await
                else {
                    continue;
                };
                let (client_rd, client_wr) = client.into_split();
                let (server_rd, server_wr) = server.into_split();
                tokio::spawn(Self::forward(server_rd, client_wr, d.clone(), n.clone()));
                tokio::spawn(Self::forward(client_rd, server_wr, p.clone(), n.clone()));
            }
        });
        Self {
            port,
            publish,
            delivery,
            swallowed,
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Forwards NATS protocol frame by frame (a `PUB`, `HPUB`, `MSG` or `HMSG` line with its
    /// payload is one frame), leaving out the targeted one.
    async fn forward(
        from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        target: Target,
        swallowed: Arc<tokio::sync::Notify>,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let mut from = tokio::io::BufReader::new(from);
        loop {
            let mut frame = Vec::new();
            if from.read_until(b'\n', &mut frame).await? == 0 {
                return Ok(());
            }
            let sized = [&b"PUB "[..], b"HPUB ", b"MSG ", b"HMSG "];
            if sized.iter().any(|op| frame.starts_with(op)) {
                // The last field is the size of headers and payload, which end with CRLF.
                let size: usize = std::str::from_utf8(&frame)
                    .unwrap()
                    .split_whitespace()
                    .last()
                    .unwrap()
                    .parse()
                    .unwrap();
                let start = frame.len();
                frame.resize(start + size + 2, 0);
                from.read_exact(&mut frame[start..]).await?;
                let hit = {
                    let mut t = target.lock().unwrap();
                    let hit = t
                        .as_ref()
                        .is_some_and(|m| frame[start..].windows(m.len()).any(|w| w == m));
                    if hit {
                        *t = None;
                    }
                    hit
                };
                if hit {
                    swallowed.notify_one();
                    continue;
                }
            }
            to.write_all(&frame).await?;
        }
    }

    /// Swallows the next publish containing `needle`.
    fn swallow_publish(&self, needle: &[u8]) {
        *self.publish.lock().unwrap() = Some(needle.to_vec());
    }

    /// Swallows the next message to the client containing `needle`.
    fn swallow_delivery(&self, needle: &[u8]) {
        *self.delivery.lock().unwrap() = Some(needle.to_vec());
    }

    /// Waits until the targeted frame has been swallowed.
    async fn wait_swallowed(&self) {
        tokio::time::timeout(Duration::from_secs(60), self.swallowed.notified())
            .await
            .expect("the targeted frame never came");
    }
}

fn nats_config(url: &str) -> NatsConfig {
    let mut n = NatsConfig::new(url);
    n.stream_name = Some(STREAM.into());
    n.ack_timeout = Duration::from_millis(500);
    n.max_in_flight = 64;
    n
}

/// Every line of every recording file under `dir`, in order.
fn file_lines(dir: &Path) -> Vec<String> {
    files(dir)
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".jsonl"))
        .flat_map(|f| read_text(f).lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Everything in the JetStream stream, read by a pull consumer from the start.
async fn read_back(url: &str) -> Vec<String> {
    read_back_from(url, "wsrec.feed").await
}

/// [`read_back`], every message's subject being `subject`.
async fn read_back_from(url: &str, subject: &str) -> Vec<String> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(STREAM).await.unwrap();
    let expected = stream.info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected {
        let m = tokio::time::timeout(Duration::from_secs(20), messages.next())
            .await
            .expect("the consumer stalled")
            .expect("the consumer ended")
            .unwrap();
        assert_eq!(m.subject.as_str(), subject);
        out.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    out
}

fn nats_state(s: &Stats) -> NatsState {
    s.nats.state()
}

/// Lines written to files so far (stream 0).
fn written(s: &Stats) -> u64 {
    s.streams[0].lines_written.load(Relaxed)
}

/// Every line written so far is acked or counted as dropped, and nothing waits.
fn settled(s: &Stats) -> bool {
    s.nats.published.load(Relaxed) + s.nats.dropped.load(Relaxed) == written(s)
        && s.nats.queued.load(Relaxed) == 0
}

/// A NATS server, a WebSocket server and a recorder publishing to NATS, connected to both.
struct Rig {
    nats: NatsServer,
    /// The recorder's way to the server when started with [`Rig::start_proxied`].
    proxy: Option<SwallowingProxy>,
    dir: tempfile::TempDir,
    rec: Running,
    conn: ServerConn,
    _storage: tempfile::TempDir,
    _server: TestServer,
}

impl Rig {
    async fn start(policy: wsrec::WhenFull, shutdown_timeout: Duration) -> Self {
        Self::start_with(policy, shutdown_timeout, false).await
    }

    /// Like [`start`](Self::start), the recorder reaching NATS through a [`SwallowingProxy`].
    async fn start_proxied() -> Self {
        Self::start_with(wsrec::WhenFull::DropNewest, Duration::from_secs(10), true).await
    }

    async fn start_with(
        policy: wsrec::WhenFull,
        shutdown_timeout: Duration,
        proxied: bool,
    ) -> Self {
        let storage = tempfile::tempdir().unwrap();
        let nats = NatsServer::start(storage.path());
        let proxy = if proxied {
            Some(SwallowingProxy::start(nats.port).await)
        } else {
            None
        };
        let dir = tempfile::tempdir().unwrap();
        let mut server = TestServer::start().await;
        let mut cfg = config(dir.path(), vec![stream("feed", &server.url())]);
        cfg.shutdown_timeout = shutdown_timeout;
        let url = proxy
            .as_ref()
            .map_or_else(|| nats.url(), SwallowingProxy::url);
        let mut n = nats_config(&url);
        n.when_full = policy;
        cfg.nats = Some(n);
        let rec = start(cfg, BASE);
        rec.wait_until(|s| nats_state(s) == NatsState::Connected)
            .await;
        let conn = server.accept().await;
        Self {
            nats,
            proxy,
            dir,
            rec,
            conn,
            _storage: storage,
            _server: server,
        }
    }

    /// Sends `numbered(from, n)` and waits until the recorder has written it and NATS has
    /// acked every line written. Counting received messages is not enough: the writer may not
    /// have written them yet, and then "every line written is acked" holds with the batch
    /// still to be published.
    async fn send_published(&mut self, from: usize, n: usize) {
        self.conn.send_all(numbered(from, n)).await;
        // The `connected` event and every message so far.
        let lines = (from + n) as u64 + 1;
        self.rec
            .wait_until(|s| written(s) >= lines && s.nats.published.load(Relaxed) == written(s))
            .await;
    }

    /// Sends `numbered(from, n)` and waits until the recorder has it and every line written
    /// so far is acked or counted as dropped.
    async fn send_settled(&mut self, from: usize, n: usize) {
        self.conn.send_all(numbered(from, n)).await;
        self.rec.wait_messages((from + n) as u64).await;
        self.rec.wait_until(settled).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_every_line_byte_for_byte_in_order() {
    let mut rig = Rig::start(wsrec::WhenFull::DropNewest, Duration::from_secs(10)).await;
    rig.conn.send_all(numbered(0, 500)).await;
    rig.conn.send_text(r#"{"last":true}"#).await;
    rig.rec.wait_messages(501).await;
    rig.rec
        .wait_until(|s| s.nats.published.load(Relaxed) == written(s))
        .await;
    let Rig { nats, dir, rec, .. } = rig;
    let stats = rec.stats.clone();
    // Status and metrics show the sink.
    let published = stats.nats.published.load(Relaxed);
    let table = wsrec::observe::status::render_table(&stats.snapshot(), 0);
    assert!(
        table.contains(&format!(
            "nats: connected | published {published} | dropped 0 | in flight 0 | queued 0"
        )),
        "{table}"
    );
    let scrape = wsrec::observe::metrics::Scrape {
        now_ns: 0,
        start_ns: 0,
    };
    let metrics = wsrec::observe::metrics::render(
        &stats,
        &scrape,
        wsrec::observe::metrics::Exposition::Prometheus,
    );
    for line in [
        format!("wsrec_nats_published_lines_total {published}"),
        "wsrec_nats_dropped_lines_total 0".to_owned(),
        "wsrec_nats_connected 1".to_owned(),
        "wsrec_nats_in_flight 0".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    rec.stop().await;
    assert_eq!(stats.nats.dropped.load(Relaxed), 0);
    assert_eq!(stats.nats.state(), NatsState::Stopped);

    // Read back after the recorder stopped: the file's lines, byte for byte, in order.
    let lines = file_lines(dir.path());
    assert_eq!(messages(&records(dir.path())).len(), 501);
    let published = read_back(&nats.url()).await;
    assert_eq!(published.len(), lines.len());
    for (i, (p, f)) in published.iter().zip(&lines).enumerate() {
        assert_eq!(p, f, "line {i} differs");
    }
    assert_eq!(stats.nats.published.load(Relaxed), lines.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_never_stops_recording_and_the_gap_is_marked() {
    let mut rig = Rig::start(wsrec::WhenFull::DropNewest, Duration::from_secs(10)).await;
    // Before the outage: everything is published.
    rig.send_published(0, 200).await;

    // The server goes away mid-stream; recording goes on.
    rig.nats.stop();
    rig.conn.send_all(numbered(200, 100)).await;
    rig.rec.wait_messages(300).await;
    rig.rec
        .wait_until(|s| nats_state(s) == NatsState::Connecting)
        .await;
    rig.conn.send_all(numbered(300, 100)).await;
    rig.rec.wait_messages(400).await;
    rig.rec
        .wait_until(|s| s.nats.dropped.load(Relaxed) > 0)
        .await;

    // It comes back (same port and storage): publishing resumes.
    rig.nats.restart();
    rig.rec
        .wait_until(|s| nats_state(s) == NatsState::Connected)
        .await;
    rig.send_settled(400, 100).await;
    let Rig { nats, dir, rec, .. } = rig;
    let stats = rec.stats.clone();
    rec.stop().await;

    // The file is complete.
    let recs = records(dir.path());
    assert_eq!(messages(&recs), numbered(0, 500));
    let lines = file_lines(dir.path());
    let published = read_back(&nats.url()).await;

    // NATS has the file's lines, in order, minus exactly what the gap events say.
    let mut rest = lines.iter();
    for (i, p) in published.iter().enumerate() {
        assert!(
            rest.any(|f| f == p),
            "published line {i} is not in the file in order: {p}"
        );
    }
    let gaps = events(&recs, "nats_gap");
    assert!(!gaps.is_empty(), "no nats_gap event");
    let lost: u64 = gaps.iter().map(|g| g["lost"].as_u64().unwrap()).sum();
    assert!(lost > 0);
    assert_eq!(lost, (lines.len() - published.len()) as u64);
    assert_eq!(stats.nats.dropped.load(Relaxed), lost);
    for g in &gaps {
        assert!(g["from_ts"].as_u64().unwrap() <= g["to_ts"].as_u64().unwrap());
    }
    // Everything after the last gap mark reached NATS, the mark included.
    let last_gap = lines
        .iter()
        .rposition(|l| l.contains(r#""event":"nats_gap""#))
        .unwrap();
    let tail = &lines[last_gap..];
    assert_eq!(&published[published.len() - tail.len()..], tail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_the_server_missed_is_marked_lost_never_stored_after_later_ones() {
    let mut rig = Rig::start_proxied().await;
    rig.send_published(0, 20).await;

    // The server never gets line 20 but stores the lines pipelined after it.
    rig.proxy.as_ref().unwrap().swallow_publish(br#"{"n":20,"#);
    rig.conn.send_all(numbered(20, 40)).await;
    rig.rec.wait_messages(60).await;
    rig.proxy.as_ref().unwrap().wait_swallowed().await;
    // Its ack times out; what the server holds is settled.
    rig.rec.wait_until(settled).await;
    // The next batch carries the gap mark.
    rig.send_settled(60, 20).await;
    let Rig { nats, dir, rec, .. } = rig;
    let stats = rec.stats.clone();
    rec.stop().await;

    let recs = records(dir.path());
    assert_eq!(messages(&recs), numbered(0, 80));
    let lines = file_lines(dir.path());
    let missed = lines
        .iter()
        .position(|l| l.contains(r#"{"n":20,"#))
        .unwrap();
    // JetStream holds the file's lines in file order, without the missed one: storing it now
    // would put it after lines 21 to 59. Compared as positions in the file.
    let published = read_back(&nats.url()).await;
    let positions: Vec<usize> = published
        .iter()
        .map(|p| lines.iter().position(|f| f == p).expect("not in the file"))
        .collect();
    let expected: Vec<usize> = (0..lines.len()).filter(|&i| i != missed).collect();
    assert_eq!(positions, expected);
    // It is counted and marked.
    let gaps = events(&recs, "nats_gap");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["lost"], 1);
    assert_eq!(stats.nats.dropped.load(Relaxed), 1);
    assert_eq!(stats.nats.published.load(Relaxed), published.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_neither_loses_nor_duplicates_nor_reorders() {
    let mut rig = Rig::start_proxied().await;
    rig.send_published(0, 20).await;

    // The server stores line 20 and the lines after it, but line 20's ack is lost: the
    // recorder cannot tell it from a line the server missed until it asks.
    let next_seq = {
        let js = async_nats::jetstream::new(async_nats::connect(rig.nats.url()).await.unwrap());
        let mut stream = js.get_stream(STREAM).await.unwrap();
        stream.info().await.unwrap().state.last_sequence + 1
    };
    let proxy = rig.proxy.as_ref().unwrap();
    proxy.swallow_delivery(format!(r#""seq":{next_seq}}}"#).as_bytes());
    rig.conn.send_all(numbered(20, 40)).await;
    rig.rec.wait_messages(60).await;
    proxy.wait_swallowed().await;
    rig.send_published(60, 20).await;
    let Rig { nats, dir, rec, .. } = rig;
    let stats = rec.stats.clone();
    rec.stop().await;

    assert_eq!(messages(&records(dir.path())), numbered(0, 80));
    assert_eq!(read_back(&nats.url()).await, file_lines(dir.path()));
    assert_eq!(stats.nats.dropped.load(Relaxed), 0);
    assert!(events(&records(dir.path()), "nats_gap").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_holds_lines_through_an_outage_and_publishes_them_after() {
    let mut rig = Rig::start(wsrec::WhenFull::Block, Duration::from_secs(10)).await;
    rig.send_published(0, 100).await;

    rig.nats.stop();
    rig.conn.send_all(numbered(100, 100)).await;
    rig.rec
        .wait_until(|s| nats_state(s) == NatsState::Connecting)
        .await;
    rig.conn.send_all(numbered(200, 100)).await;
    rig.rec.wait_messages(300).await;
    // Held, not dropped.
    rig.rec
        .wait_until(|s| s.nats.queued.load(Relaxed) > 0)
        .await;
    assert_eq!(rig.rec.stats.nats.dropped.load(Relaxed), 0);

    rig.nats.restart();
    rig.rec
        .wait_until(|s| s.nats.published.load(Relaxed) == written(s))
        .await;
    let Rig { nats, dir, rec, .. } = rig;
    let stats = rec.stats.clone();
    rec.stop().await;
    assert_eq!(stats.nats.dropped.load(Relaxed), 0);
    let lines = file_lines(dir.path());
    assert_eq!(messages(&records(dir.path())), numbered(0, 300));
    assert_eq!(read_back(&nats.url()).await, lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_nats_is_down_keeps_its_deadline_and_counts_what_is_left() {
    let mut rig = Rig::start(wsrec::WhenFull::Block, Duration::from_secs(2)).await;
    rig.send_published(0, 50).await;
    rig.nats.stop();
    rig.conn.send_all(numbered(50, 50)).await;
    rig.rec.wait_messages(100).await;
    let Rig { dir, rec, .. } = rig;
    let stats = rec.stats.clone();
    let started = std::time::Instant::now();
    rec.stop().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.nats.state(), NatsState::Stopped);
    // Every line is in the file; what NATS did not ack is counted.
    assert_eq!(messages(&records(dir.path())), numbered(0, 100));
    let lines = file_lines(dir.path()).len() as u64;
    let published = stats.nats.published.load(Relaxed);
    assert!(published < lines);
    assert_eq!(published + stats.nats.dropped.load(Relaxed), lines);
    assert_eq!(stats.nats.queued.load(Relaxed), 0);
}

/// `{tag.KEY}` in the subject: the stream's lines go to its tag's subject (and the JetStream
/// stream created covers that subject).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_in_the_subject_routes_the_stream() {
    let storage = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(storage.path());
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.tags.insert("region".to_owned(), "eu".to_owned());
    let mut cfg = config(dir.path(), vec![s]);
    let mut n = nats_config(&nats.url());
    n.subject = "md.{tag.region}.{stream}".to_owned();
    cfg.nats = Some(n);
    let rec = start(cfg, BASE);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 20)).await;
    rec.wait_messages(20).await;
    rec.wait_until(|s| written(s) >= 21 && s.nats.published.load(Relaxed) == written(s))
        .await;
    rec.stop().await;
    let lines = file_lines(dir.path());
    assert_eq!(read_back_from(&nats.url(), "md.eu.feed").await, lines);
}
