//! Venue presets against local servers that speak each venue's protocol closely enough: they
//! expect the venue's subscribe messages, answer with its acks (and real frames from the corpus
//! where there are some), close a client that breaks the venue's keepalive rule, cut connections
//! at the venue's lifetime, and send its reconnect requests. Time is tokio's paused clock, so a
//! day of venue time takes seconds.
//!
//! The clock is stepped by [`drive`], not left to auto-advance: tokio advances a paused clock to
//! the next timer whenever the runtime parks, even when the park also found socket data, so a
//! pong already on its way would lose the race against its own deadline. Between two steps the
//! runtime gets a moment of real time (a blocking task in flight stops auto-advance) for every
//! round trip on loopback to finish.
//!
//! Where the rule is about the venue's own address (its host, port and paths), the preset's real
//! URL is dialled through the venue's "front door" ([`FakeVenue::front_door`]): an HTTP CONNECT
//! proxy standing in for DNS and routing, which opens a tunnel only to the ports the venue still
//! serves and speaks TLS with a certificate for the venue's host from a test CA. Those tests run
//! on real time: they wait for events, not for time to pass.

mod common;
mod peers;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{BASE_NS, config, events, records, start};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsrec::Config;

/// What the fake venue saw or did, in order.
#[derive(Debug, Clone)]
struct Seen {
    conn: usize,
    at: Duration,
    what: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Frames the fake venue sends on its own.
type Frames = fn(&ConnState) -> Vec<String>;

/// How a fake venue behaves.
#[derive(Clone)]
struct Venue {
    /// Checks a connection's request target (path and query) before the upgrade; `Err` refuses
    /// it with this HTTP status and reason.
    admit: fn(&str) -> Result<(), (u16, &'static str)>,
    /// Sets up an admitted connection from its request target (streams named in the URL);
    /// returns frames to send at once.
    opened: fn(&str, &mut ConnState) -> Vec<String>,
    /// Replies to one client text message.
    answer: fn(&str, &mut ConnState) -> Vec<String>,
    /// Whether a client message counts as keeping the connection alive.
    keeps_alive: fn(&Incoming) -> bool,
    /// A connection that sent nothing that keeps it alive for this long is closed.
    idle_limit: Option<Duration>,
    /// Frames the venue sends count as activity for `idle_limit` too.
    sends_keep_alive: bool,
    /// Every connection is closed after this long.
    lifetime: Option<Duration>,
    /// Once subscribed: a data frame every `data_every`, numbered by the venue-wide tick (so two
    /// overlapping connections get the same numbers).
    data: fn(u64, &ConnState) -> Vec<String>,
    data_every: Duration,
    /// Once subscribed: a server heartbeat every so often.
    heartbeat: Option<(Duration, Frames)>,
    /// A real frame sent right after the first subscribe message.
    first_frame: Option<&'static str>,
    /// At this venue time, send this to every open connection (a reconnect request).
    notice: Option<(Duration, &'static str)>,
    /// A connection that got a `test_request` must answer within this time.
    test_request_deadline: Option<Duration>,
    /// More than this many client messages (texts, pings and pongs) within one second close the
    /// connection with 1008.
    max_per_sec: Option<usize>,
    /// The venue's protocol pings: the first this long after the connection opens, then every so
    /// often.
    server_ping: Option<(Duration, Duration)>,
}

/// A client frame as the fake venue sees it.
enum Incoming {
    Text(String),
    Ping,
    Pong,
}

/// Per-connection state of the fake venue.
#[derive(Default)]
struct ConnState {
    /// The request target the connection was opened with (path and query).
    target: String,
    /// What the connection subscribed to, in the venue's own notation.
    streams: Vec<String>,
    subscribed: bool,
    /// Bitfinex channel ids handed out.
    channels: Vec<i64>,
    /// Coinbase: the heartbeats channel was subscribed.
    heartbeats: bool,
    /// Deribit: a test_request waits for its answer since then.
    test_pending: Option<Instant>,
}

struct FakeVenue {
    /// The venue's address, or its front door's (the proxy) for [`FakeVenue::front_door`].
    addr: SocketAddr,
    log: Log,
    /// Front door only: the `host:port` of every CONNECT, in order.
    connects: Arc<Mutex<Vec<String>>>,
    /// Front door only: the test CA that signed the venue's certificate, for `ca_file`.
    ca: Option<PathBuf>,
}

impl FakeVenue {
    async fn start(venue: Venue) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let start = Instant::now();
        let l = log.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                // Venues answer at once; Nagle's algorithm would hold a reply behind an
                // unacknowledged frame for a delayed-ACK period of real time, which is many
                // steps of the driven clock.
                tcp.set_nodelay(true).unwrap();
                n += 1;
                upgrade(tcp, venue.clone(), l.clone(), n, start).await;
            }
        });
        Self {
            addr,
            log,
            connects: Arc::default(),
            ca: None,
        }
    }

    /// The venue behind its front door: a CONNECT proxy that tunnels only to `host:443` (any
    /// other target is refused with 502, as a proxy answers when the far end does not accept
    /// connections) and then speaks TLS as `host`, with a certificate from a test CA made under
    /// `dir`.
    async fn front_door(venue: Venue, host: &'static str, dir: &Path) -> Self {
        let pki = peers::Pki::new(dir, host);
        let (cert, key) = pki.leaf(host, &[host], false);
        let tls = tokio_rustls::TlsAcceptor::from(peers::tls_server_config(&cert, &key));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let connects: Arc<Mutex<Vec<String>>> = Arc::default();
        let (l, c) = (log.clone(), connects.clone());
        let start = Instant::now();
        let n = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tcp.set_nodelay(true).unwrap();
                let (venue, l, c, tls, n) =
                    (venue.clone(), l.clone(), c.clone(), tls.clone(), n.clone());
                tokio::spawn(async move {
                    let request = peers::read_request(&mut tcp).await;
                    let target = request.split_whitespace().nth(1).unwrap_or("").to_owned();
                    c.lock().unwrap().push(target.clone());
                    if target != format!("{host}:443") {
                        let _ = tcp.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    }
                    let reply = b"HTTP/1.1 200 Connection established\r\n\r\n";
                    if tcp.write_all(reply).await.is_err() {
                        return;
                    }
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    upgrade(stream, venue, l, n.fetch_add(1, Relaxed) + 1, start).await;
                });
            }
        });
        Self {
            addr,
            log,
            connects,
            ca: Some(pki.ca_pem),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The `proxy` and `ca_file` lines that send a preset's own URL through the front door.
    fn front_door_toml(&self) -> String {
        format!(
            "proxy = \"http://{}\"\nca_file = \"{}\"",
            self.addr,
            self.ca.as_ref().expect("not a front door").display()
        )
    }

    /// Front door only: every CONNECT target so far.
    fn connects(&self) -> Vec<String> {
        self.connects.lock().unwrap().clone()
    }

    /// The request target (path and query) of every connection, in connection order.
    fn targets(&self) -> Vec<String> {
        let mut t: Vec<(usize, String)> = self
            .seen()
            .into_iter()
            .filter_map(|s| Some((s.conn, s.what.strip_prefix("target ")?.to_owned())))
            .collect();
        t.sort();
        t.into_iter().map(|(_, t)| t).collect()
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    fn texts(&self, conn: usize) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.conn == conn && s.what.starts_with("text "))
            .map(|s| s.what[5..].to_owned())
            .collect()
    }

    fn closed_by_venue(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.what.starts_with("venue closed"))
            .collect()
    }

    /// The venue never had to cut a connection (keepalive and lifetime rules were kept).
    fn assert_never_closed(&self, context: &str) {
        let closed = self.closed_by_venue();
        assert!(
            closed.is_empty(),
            "{context}: the venue had to cut: {closed:?}"
        );
    }

    fn connections(&self) -> usize {
        self.seen().iter().map(|s| s.conn).max().unwrap_or(0)
    }
}

/// Upgrades connection `conn` if the venue admits its request target, and serves it on a task
/// of its own; a refusal is noted.
#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn upgrade<S>(stream: S, v: Venue, log: Log, conn: usize, start: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut target = String::new();
    let mut refused = None;
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        target = req.uri().to_string();
        match (v.admit)(&target) {
            Ok(()) => Ok(resp),
            Err((status, why)) => {
                refused = Some(status);
                Err(http::Response::builder()
                    .status(status)
                    .body(Some(why.to_owned()))
                    .unwrap())
            }
        }
    };
    let upgraded = tokio_tungstenite::accept_hdr_async(stream, check).await;
    match upgraded {
        Ok(ws) => {
            tokio::spawn(serve(ws, target, v, log, conn, start));
        }
        Err(e) => log.lock().unwrap().push(Seen {
            conn,
            at: start.elapsed(),
            what: format!("refused {refused:?}: {e}"),
        }),
    }
}

async fn serve<S>(
    mut ws: WebSocketStream<S>,
    target: String,
    v: Venue,
    log: Log,
    conn: usize,
    start: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let note = |what: String| {
        log.lock().unwrap().push(Seen {
            conn,
            at: start.elapsed(),
            what,
        });
    };
    note("open".to_owned());
    note(format!("target {target}"));
    let opened = Instant::now();
    let mut heard = Instant::now();
    let mut st = ConnState {
        target: target.clone(),
        ..ConnState::default()
    };
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // Data ticks aligned on venue time, so overlapping connections send the same numbers.
    let next_tick = |now: Instant| {
        let e = (now - start).as_nanos() / v.data_every.as_nanos() + 1;
        start + v.data_every * e as u32
    };
    let mut data_at = next_tick(Instant::now());
    let mut hb_at = far;
    // A reconnect request goes to the connections open at that time.
    let mut notice_at = match v.notice {
        Some((t, _)) if start + t > opened => start + t,
        _ => far,
    };
    let mut ping_at = v.server_ping.map_or(far, |(first, _)| opened + first);
    // When the client's messages of the last second came.
    let mut recent: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
    for f in (v.opened)(&target, &mut st) {
        if ws.send(Message::text(f)).await.is_err() {
            return;
        }
    }
    if st.subscribed {
        on_subscribed(&mut ws, &v, &mut hb_at).await;
    }
    loop {
        let idle_at = v.idle_limit.map_or(far, |l| heard + l);
        let life_at = v.lifetime.map_or(far, |l| opened + l);
        let test_at = match (st.test_pending, v.test_request_deadline) {
            (Some(t), Some(d)) => t + d,
            _ => far,
        };
        let close_at = idle_at.min(life_at).min(test_at);
        tokio::select! {
            m = ws.next() => {
                let incoming = match m {
                    Some(Ok(Message::Text(t))) => Incoming::Text(t.as_str().to_owned()),
                    Some(Ok(Message::Ping(_))) => Incoming::Ping,
                    Some(Ok(Message::Pong(_))) => Incoming::Pong,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        note("client closed".to_owned());
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                if let Some(max) = v.max_per_sec {
                    let now = Instant::now();
                    recent.push_back(now);
                    while recent.front().is_some_and(|t| now - *t > Duration::from_secs(1)) {
                        recent.pop_front();
                    }
                    if recent.len() > max {
                        note(format!("venue closed: more than {max} messages in one second"));
                        let _ = ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: "Too many requests".into() })).await;
                        return;
                    }
                }
                if (v.keeps_alive)(&incoming) {
                    heard = Instant::now();
                }
                let t = match incoming {
                    Incoming::Text(t) => t,
                    Incoming::Ping => {
                        note("ping".to_owned());
                        continue;
                    }
                    Incoming::Pong => {
                        note("pong".to_owned());
                        continue;
                    }
                };
                note(format!("text {t}"));
                let was = st.subscribed;
                let replies = (v.answer)(&t, &mut st);
                for r in replies {
                    if ws.send(Message::text(r)).await.is_err() {
                        return;
                    }
                }
                if st.subscribed && !was {
                    on_subscribed(&mut ws, &v, &mut hb_at).await;
                }
            }
            () = tokio::time::sleep_until(close_at) => {
                let why = if close_at == life_at { "lifetime" } else if close_at == test_at { "test_request unanswered" } else { "idle" };
                note(format!("venue closed: {why}"));
                let _ = ws.close(Some(CloseFrame { code: CloseCode::Policy, reason: why.into() })).await;
                return;
            }
            () = tokio::time::sleep_until(data_at) => {
                let n = ((data_at - start).as_nanos() / v.data_every.as_nanos()) as u64;
                data_at = next_tick(Instant::now());
                if st.subscribed {
                    for f in (v.data)(n, &st) {
                        if ws.send(Message::text(f)).await.is_err() {
                            return;
                        }
                        if v.sends_keep_alive {
                            heard = Instant::now();
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(hb_at) => {
                let (every, frames) = v.heartbeat.unwrap();
                hb_at = Instant::now() + every;
                for f in frames(&st) {
                    if f.contains("test_request") && st.test_pending.is_none() {
                        st.test_pending = Some(Instant::now());
                    }
                    let _ = ws.send(Message::text(f)).await;
                    if v.sends_keep_alive {
                        heard = Instant::now();
                    }
                }
            }
            () = tokio::time::sleep_until(ping_at) => {
                ping_at = Instant::now() + v.server_ping.unwrap().1;
                note("server ping".to_owned());
                if ws.send(Message::Ping(b"venue".to_vec().into())).await.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(notice_at) => {
                notice_at = far;
                note("notice".to_owned());
                let _ = ws.send(Message::text(v.notice.unwrap().1)).await;
            }
        }
    }
}

/// What the venue does once a connection has subscribed: the real first frame, then heartbeats.
async fn on_subscribed<S>(ws: &mut WebSocketStream<S>, v: &Venue, hb_at: &mut Instant)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(f) = v.first_frame {
        let _ = ws.send(Message::text(f)).await;
    }
    if let Some((every, _)) = v.heartbeat {
        *hb_at = Instant::now() + every;
    }
}

/// Binance combined streams named in the URL (`/stream?streams=a/b`): subscribed from the start.
fn url_streams(target: &str, st: &mut ConnState) -> Vec<String> {
    if let Some((_, streams)) = target.split_once("?streams=") {
        st.streams = streams.split('/').map(str::to_owned).collect();
        st.subscribed = true;
    }
    Vec::new()
}

fn parse(t: &str) -> Value {
    serde_json::from_str(t).unwrap_or(Value::Null)
}

fn any_client_frame(_: &Incoming) -> bool {
    true
}

/// A venue that answers nothing and sends nothing; each test fills in what its venue does.
fn quiet_venue() -> Venue {
    Venue {
        admit: |_| Ok(()),
        opened: url_streams,
        answer: |_, _| Vec::new(),
        keeps_alive: any_client_frame,
        idle_limit: None,
        sends_keep_alive: false,
        lifetime: None,
        data: |_, _| Vec::new(),
        data_every: Duration::from_secs(3600),
        heartbeat: None,
        first_frame: None,
        notice: None,
        test_request_deadline: None,
        max_per_sec: None,
        server_ping: None,
    }
}

/// Runs a recorder on `toml` (a `[[stream]]` body; `output_dir` etc. are added) for `run` of
/// paused time and returns its records.
async fn record_for(stream_toml: &str, run: Duration) -> (Vec<Value>, wsrec::stats::Snapshot) {
    record_stepped(stream_toml, run, default_step(run)).await
}

/// [`record_for`] with the clock moved `step` at a time.
async fn record_stepped(
    stream_toml: &str,
    run: Duration,
    step: Duration,
) -> (Vec<Value>, wsrec::stats::Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "flush_interval = \"10s\"\n[[stream]]\nname = \"v\"\nbackoff_initial = \"1s\"\n{stream_toml}\n"
    );
    let parsed = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut c = config(dir.path(), parsed.streams);
    c.flush_interval = parsed.flush_interval;
    c.validate().unwrap();
    let rec = start(c, BASE_NS);
    drive_by(run, step).await;
    let snap = rec.stats.snapshot();
    rec.stop().await;
    (records(dir.path()), snap)
}

/// The clock step for a run of `total`: fine for short runs, coarser for a day (still below
/// every deadline in the presets).
fn default_step(total: Duration) -> Duration {
    if total > Duration::from_secs(7200) {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(500)
    }
}

/// Moves the paused clock forward by `total` in steps of `step`, letting socket traffic settle
/// in real time after each step.
async fn drive_by(total: Duration, step: Duration) {
    let mut done = Duration::ZERO;
    while done < total {
        tokio::time::advance(step).await;
        done += step;
        settle().await;
    }
}

/// Gives the runtime a little real time with auto-advance held off.
async fn settle() {
    for _ in 0..2 {
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_micros(300)))
            .await
            .unwrap();
    }
}

/// Tick numbers carried by data messages (field `n` at any depth of `msg`).
fn ticks(recs: &[Value]) -> BTreeSet<u64> {
    fn find(v: &Value) -> Option<u64> {
        match v {
            Value::Object(m) => m
                .get("n")
                .and_then(Value::as_u64)
                .or_else(|| m.values().find_map(find)),
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    recs.iter()
        .filter_map(|r| r.get("msg").and_then(find))
        .collect()
}

fn assert_contiguous(t: &BTreeSet<u64>, at_least: usize) {
    assert!(t.len() >= at_least, "only {} data ticks: {t:?}", t.len());
    let (lo, hi) = (*t.first().unwrap(), *t.last().unwrap());
    assert_eq!(
        t.len() as u64,
        hi - lo + 1,
        "a gap in the data ticks {lo}..={hi}"
    );
}

fn reasons(recs: &[Value]) -> Vec<String> {
    events(recs, "disconnected")
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect()
}

/// The first frame of a corpus file (real frames, see tests/fixtures/corpus/SOURCES.md).
fn first_line(file: &'static str) -> &'static str {
    file.lines().next().unwrap()
}

/// The recorded messages, as they appear in the files (the `msg` bytes verbatim).
fn raw_msgs(recs: &[Value]) -> Vec<String> {
    recs.iter()
        .filter_map(|r| r.get("msg"))
        .map(Value::to_string)
        .collect()
}

const COINBASE_TRADES: &str = include_str!("fixtures/corpus/coinbase-advanced_market_trades.jsonl");
const OKX_TRADES: &str = include_str!("fixtures/corpus/okx_trades.jsonl");
const BINANCE_AGG: &str = include_str!("fixtures/corpus/binance-usdm_aggTrade.jsonl");

const BYBIT_TRADE: &str = r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1786310819681,"data":[{"T":1786310819680,"s":"BTCUSDT","S":"Sell","v":"0.004","p":"65114.20","L":"MinusTick","i":"a9188a0a-82bc-50de-be60-03eedbe3cdd7","BT":false,"RPI":false,"seq":753843954913}]}"#;

#[tokio::test(start_paused = true)]
async fn bybit_pings_keep_a_quiet_connection_past_the_ten_minute_cut() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            match v["op"].as_str() {
                Some("ping") => vec![json!({"success":true,"ret_msg":"pong","conn_id":"c1","req_id":"","op":"ping"}).to_string()],
                Some("subscribe") => {
                    st.subscribed = true;
                    vec![json!({"success":true,"ret_msg":"","conn_id":"c1","req_id":v["req_id"],"op":"subscribe"}).to_string()]
                }
                _ => Vec::new(),
            }
        },
        // Bybit: only the JSON ping counts; protocol pings do not.
        keeps_alive: |i| matches!(i, Incoming::Text(t) if t.contains(r#""op":"ping""#)),
        idle_limit: Some(Duration::from_secs(600)),
        // A quiet symbol: one trade every five minutes.
        data: |n, _| vec![format!(r#"{{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":{n},"data":[{{"n":{n},"p":"65000.1"}}]}}"#)],
        data_every: Duration::from_secs(300),
        first_frame: Some(BYBIT_TRADE),
        ..quiet_venue()
    })
    .await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"bybit-linear\"\nurl = \"{}\"\ntopics = [\"publicTrade.BTCUSDT\", \"orderbook.50.BTCUSDT\"]",
            venue.url("/v5/public/linear")
        ),
        Duration::from_secs(45 * 60),
    )
    .await;
    venue.assert_never_closed("bybit-linear");
    assert_eq!(venue.connections(), 1, "{:#?}", &venue.seen()[..40]);
    let texts = venue.texts(1);
    assert_eq!(
        texts[0],
        r#"{"req_id":"1","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.50.BTCUSDT"]}"#
    );
    let pings = texts.iter().filter(|t| *t == r#"{"op":"ping"}"#).count();
    assert!((130..=136).contains(&pings), "{pings} pings in 45 min");
    // The real frame is stored byte for byte, the quiet data complete, one connection.
    let msgs: Vec<String> = recs
        .iter()
        .filter_map(|r| r.get("msg"))
        .map(Value::to_string)
        .collect();
    assert!(msgs.iter().any(|m| m == BYBIT_TRADE));
    assert_contiguous(&ticks(&recs), 8);
    assert_eq!(reasons(&recs), ["shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn binance_connection_is_replaced_before_the_24_hour_cut_with_nothing_lost() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            if v["method"] == "SUBSCRIBE" {
                st.subscribed = true;
                return vec![json!({"result": null, "id": v["id"]}).to_string()];
            }
            Vec::new()
        },
        keeps_alive: |i| matches!(i, Incoming::Ping),
        idle_limit: Some(Duration::from_secs(600)),
        lifetime: Some(Duration::from_secs(24 * 3600)),
        data: |n, _| vec![format!(r#"{{"stream":"ctkusdt@aggTrade","data":{{"e":"aggTrade","E":{n},"a":{n},"s":"CTKUSDT","n":{n}}}}}"#)],
        data_every: Duration::from_secs(10),
        first_frame: Some(first_line(BINANCE_AGG)),
        ..quiet_venue()
    })
    .await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"binance-usdm\"\nurl = \"{}\"\nchannels = [\"aggTrade\"]\nsymbols = [\"CTKUSDT\"]",
            venue.url("/market/stream")
        ),
        Duration::from_secs(24 * 3600 + 1200),
    )
    .await;
    venue.assert_never_closed("binance-usdm");
    assert_eq!(venue.connections(), 2);
    // Both connections name the stream in the URL and send no subscribe message.
    assert_eq!(
        venue.targets(),
        ["/market/stream?streams=ctkusdt@aggTrade"; 2]
    );
    assert!(venue.texts(1).is_empty() && venue.texts(2).is_empty());
    let subscribed = events(&recs, "subscribed");
    assert_eq!(subscribed.len(), 2);
    assert!(subscribed.iter().all(|e| e["count"] == 0
        && e["messages"] == json!([])
        && e["in_url"] == json!(["ctkusdt@aggTrade"])));
    let connected = events(&recs, "connected");
    assert_eq!(connected.len(), 2);
    assert_eq!(connected[1]["replaces"], 1);
    let at = |e: &Value| (e["ts"].as_u64().unwrap() - BASE_NS) / 1_000_000_000;
    let replaced_at = at(connected[1]);
    assert!(
        (23 * 3600 + 1800..24 * 3600).contains(&replaced_at),
        "replaced at {replaced_at} s"
    );
    assert_eq!(reasons(&recs), ["replaced", "shutdown"]);
    // Every tick of the day is in the recording (the overlap holds some twice, marked by conn).
    assert_contiguous(&ticks(&recs), 24 * 360);
    assert!(raw_msgs(&recs).iter().any(|m| m == first_line(BINANCE_AGG)));
}

#[tokio::test(start_paused = true)]
async fn binance_usdm_market_stream_silent_on_the_legacy_root_is_reported() {
    // The legacy root URL serves only /public streams: the aggTrade stream never delivers.
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            if v["method"] == "SUBSCRIBE" {
                st.subscribed = true;
                return vec![json!({"result": null, "id": v["id"]}).to_string()];
            }
            Vec::new()
        },
        data: |n, _| {
            vec![format!(
                r#"{{"stream":"btcusdt@bookTicker","data":{{"u":{n},"s":"BTCUSDT","n":{n}}}}}"#
            )]
        },
        data_every: Duration::from_secs(1),
        ..quiet_venue()
    })
    .await;
    let dir_url = venue.url("/stream");
    let (recs, snap) = record_for(
        &format!(
            "venue = \"binance-usdm\"\nurl = \"{dir_url}\"\ntopics = [\"btcusdt@aggTrade\", \"btcusdt@bookTicker\"]"
        ),
        Duration::from_secs(180),
    )
    .await;
    let silent = events(&recs, "subscription_silent");
    assert_eq!(silent.len(), 1, "{silent:?}");
    // Streams named in the URL are never acknowledged.
    assert_eq!(silent[0]["acknowledged"], json!([]));
    assert_eq!(silent[0]["not_acknowledged"], json!(["btcusdt@aggTrade"]));
    assert_eq!(silent[0]["after_ms"], 120_000);
    assert_eq!(snap.streams[0].subscriptions_failed, 1);
    let table = wsrec::status::render_table(&snap, BASE_NS);
    assert!(table.contains("1 subs failing"), "{table}");
    // Reporting is not reconnecting: the book stream goes on.
    assert_eq!(venue.connections(), 1);
    assert_contiguous(&ticks(&recs), 170);
}

#[tokio::test(start_paused = true)]
async fn okx_service_upgrade_notice_is_a_make_before_break_reconnect() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            if t == "ping" {
                return vec!["pong".to_owned()];
            }
            let v = parse(t);
            if v["op"] == "subscribe" {
                st.subscribed = true;
                return v["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| json!({"event":"subscribe","arg":a,"connId":"a1"}).to_string())
                    .collect();
            }
            Vec::new()
        },
        // OKX closes a connection that has been silent for 30 s.
        idle_limit: Some(Duration::from_secs(30)),
        data: |n, _| vec![format!(r#"{{"arg":{{"channel":"trades","instId":"BTC-USD-220527"}},"data":[{{"instId":"BTC-USD-220527","tradeId":"{n}","n":{n}}}]}}"#)],
        data_every: Duration::from_secs(40),
        first_frame: Some(first_line(OKX_TRADES)),
        notice: Some((
            Duration::from_secs(300),
            r#"{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a1"}"#,
        )),
        ..quiet_venue()
    })
    .await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"okx\"\nurl = \"{}\"\ntopics = [\"trades:BTC-USD-220527\"]",
            venue.url("/ws/v5/public")
        ),
        Duration::from_secs(600),
    )
    .await;
    venue.assert_never_closed("okx");
    assert_eq!(venue.connections(), 2);
    let requested = events(&recs, "reconnect_requested");
    assert_eq!(requested.len(), 1);
    assert!(requested[0]["reason"].as_str().unwrap().contains("64008"));
    let connected = events(&recs, "connected");
    assert_eq!(connected[1]["replaces"], 1);
    assert_eq!(reasons(&recs), ["replaced", "shutdown"]);
    assert_contiguous(&ticks(&recs), 14);
    // The real frame, sent to both connections, is stored byte for byte (twice: the overlap).
    let real = first_line(OKX_TRADES);
    assert_eq!(raw_msgs(&recs).iter().filter(|m| *m == real).count(), 2);
    assert!(events(&recs, "subscription_silent").is_empty());
}

#[tokio::test(start_paused = true)]
async fn deribit_sets_the_heartbeat_and_answers_every_test_request() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            match v["method"].as_str() {
                Some("public/set_heartbeat") => {
                    vec![json!({"jsonrpc":"2.0","id":v["id"],"result":"ok"}).to_string()]
                }
                Some("public/subscribe") => {
                    st.subscribed = true;
                    vec![json!({"jsonrpc":"2.0","id":v["id"],"result":v["params"]["channels"]}).to_string()]
                }
                Some("public/test") => {
                    st.test_pending = None;
                    vec![json!({"jsonrpc":"2.0","id":v["id"],"result":{"version":"1.2.26"}}).to_string()]
                }
                _ => Vec::new(),
            }
        },
        heartbeat: Some((Duration::from_secs(30), |_| {
            vec![r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#.to_owned()]
        })),
        test_request_deadline: Some(Duration::from_secs(10)),
        data: |n, _| vec![format!(r#"{{"jsonrpc":"2.0","method":"subscription","params":{{"channel":"trades.BTC-PERPETUAL.100ms","data":[{{"trade_seq":{n},"n":{n}}}]}}}}"#)],
        data_every: Duration::from_secs(60),
        ..quiet_venue()
    })
    .await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"deribit\"\nurl = \"{}\"\nchannels = [\"trades\"]\nsymbols = [\"BTC-PERPETUAL\"]",
            venue.url("/ws/api/v2")
        ),
        Duration::from_secs(900),
    )
    .await;
    venue.assert_never_closed("deribit");
    let texts = venue.texts(1);
    assert!(texts[0].contains("public/set_heartbeat"), "{texts:?}");
    assert!(texts[1].contains(r#""channels":["trades.BTC-PERPETUAL.100ms"]"#));
    let answers = texts.iter().filter(|t| t.contains("public/test")).count();
    assert!((29..=30).contains(&answers), "{answers} answers in 15 min");
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert_eq!(reasons(&recs), ["shutdown"]);
    assert_contiguous(&ticks(&recs), 14);
}

#[tokio::test(start_paused = true)]
async fn coinbase_subscribes_heartbeats_so_quiet_channels_stay_open() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            if v["type"] != "subscribe" {
                return Vec::new();
            }
            if v["channel"] == "heartbeats" {
                st.heartbeats = true;
                return Vec::new();
            }
            st.subscribed = true;
            vec![json!({"channel":"subscriptions","client_id":"","timestamp":"2026-08-09T21:05:48Z","sequence_num":0,
                "events":[{"subscriptions":{v["channel"].as_str().unwrap(): v["product_ids"]}}]}).to_string()]
        },
        // Coinbase closes channels quiet for 60-90 s unless heartbeats are subscribed:
        // modelled as a cut after 90 s in which the venue sent nothing.
        keeps_alive: |_| false,
        sends_keep_alive: true,
        idle_limit: Some(Duration::from_secs(90)),
        heartbeat: Some((Duration::from_secs(1), |st| {
            if st.heartbeats {
                vec![r#"{"channel":"heartbeats","client_id":"","timestamp":"2026-08-09T21:05:49Z","sequence_num":1,"events":[{"current_time":"2026-08-09 21:05:49","heartbeat_counter":1}]}"#.to_owned()]
            } else {
                Vec::new()
            }
        })),
        data: |n, _| vec![format!(r#"{{"channel":"market_trades","client_id":"","timestamp":"t","sequence_num":{n},"events":[{{"type":"update","trades":[{{"trade_id":"{n}","product_id":"BTC-USD","n":{n}}}]}}]}}"#)],
        data_every: Duration::from_secs(120),
        first_frame: Some(first_line(COINBASE_TRADES)),
        ..quiet_venue()
    })
    .await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"coinbase\"\nurl = \"{}\"\ntopics = [\"market_trades:BTC-USD\"]",
            venue.url("/")
        ),
        Duration::from_secs(600),
    )
    .await;
    let texts = venue.texts(1);
    assert_eq!(texts[0], r#"{"type":"subscribe","channel":"heartbeats"}"#);
    assert_eq!(
        texts[1],
        r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"}"#
    );
    // With 1 s heartbeats the 15 s silence rule never fires on a channel quiet for 2 min.
    assert_eq!(reasons(&recs), ["shutdown"]);
    assert_contiguous(&ticks(&recs), 4);
    let hb = recs
        .iter()
        .filter(|r| r.get("msg").is_some_and(|m| m["channel"] == "heartbeats"))
        .count();
    assert!(hb >= 590, "{hb} heartbeats recorded");
    assert!(
        raw_msgs(&recs)
            .iter()
            .any(|m| m == first_line(COINBASE_TRADES))
    );
    assert!(events(&recs, "subscription_silent").is_empty());
}

#[tokio::test(start_paused = true)]
async fn kraken_reports_a_refused_book_depth_and_lives_on_heartbeats() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            match v["method"].as_str() {
                Some("ping") => vec![json!({"method":"pong","req_id":v["req_id"],"time_in":"t","time_out":"t"}).to_string()],
                Some("subscribe") => {
                    st.subscribed = true;
                    let p = &v["params"];
                    p["symbol"].as_array().unwrap().iter().map(|sym| {
                        if p["depth"] == 7 {
                            json!({"error":"Invalid depth","method":"subscribe","req_id":v["req_id"],"success":false,"symbol":sym,"time_in":"t","time_out":"t"}).to_string()
                        } else {
                            json!({"method":"subscribe","req_id":v["req_id"],"result":{"channel":p["channel"],"depth":p["depth"],"snapshot":true,"symbol":sym},"success":true,"time_in":"t","time_out":"t"}).to_string()
                        }
                    }).collect()
                }
                _ => Vec::new(),
            }
        },
        // Books can be silent for a while; the 1 Hz heartbeat is the liveness signal.
        heartbeat: Some((Duration::from_secs(1), |_| vec![r#"{"channel":"heartbeat"}"#.to_owned()])),
        data: |n, _| vec![format!(r#"{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD","bids":[{{"price":6.5e4,"qty":{n}}}],"asks":[],"checksum":{n},"timestamp":"t","n":{n}}}]}}"#)],
        data_every: Duration::from_secs(40),
        ..quiet_venue()
    })
    .await;
    let (recs, snap) = record_for(
        &format!(
            "venue = \"kraken\"\nurl = \"{}\"\ntopics = [\"book.25:BTC/USD\", \"book.7:ETH/USD\"]",
            venue.url("/v2")
        ),
        Duration::from_secs(300),
    )
    .await;
    let texts = venue.texts(1);
    assert_eq!(
        texts[0],
        r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":25},"req_id":1}"#
    );
    let rejected = events(&recs, "subscription_rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["topics"], json!(["book.7:ETH/USD"]));
    assert_eq!(rejected[0]["reason"], "Invalid depth");
    assert_eq!(snap.streams[0].subscriptions_failed, 1);
    // The book is quiet for 40 s at a time, far past the 15 s silence rule: heartbeats carry it.
    assert_eq!(reasons(&recs), ["shutdown"]);
    assert!(events(&recs, "subscription_silent").is_empty());
    assert_contiguous(&ticks(&recs), 6);
}

#[tokio::test(start_paused = true)]
async fn bitfinex_splits_over_connections_paces_connects_and_follows_channel_ids() {
    let venue = FakeVenue::start(Venue {
        answer: |t, st| {
            let v = parse(t);
            match v["event"].as_str() {
                Some("ping") => vec![json!({"event":"pong","ts":1,"cid":v["cid"]}).to_string()],
                Some("subscribe") => {
                    st.subscribed = true;
                    // Channel ids differ per connection, as Bitfinex's do.
                    let id = 1000 * st.channels.len() as i64 + 17;
                    st.channels.push(id);
                    vec![json!({"event":"subscribed","channel":v["channel"],"chanId":id,"symbol":v["symbol"],"pair":"X"}).to_string()]
                }
                _ => Vec::new(),
            }
        },
        // Every channel gets a heartbeat every 15 s; data only on the first channel.
        heartbeat: Some((Duration::from_secs(15), |st| {
            st.channels.iter().map(|c| format!(r#"[{c},"hb"]"#)).collect()
        })),
        data: |n, st| vec![format!(r#"[{},"te",[{n},1786310819680,0.01,65000.0],{{"n":{n}}}]"#, st.channels[0])],
        data_every: Duration::from_secs(20),
        ..quiet_venue()
    })
    .await;
    let symbols: Vec<String> = (0..30).map(|i| format!("\"tS{i:02}USD\"")).collect();
    let (recs, snap) = record_for(
        &format!(
            "venue = \"bitfinex\"\nurl = \"{}\"\nchannels = [\"trades\"]\nsymbols = [{}]",
            venue.url("/ws/2"),
            symbols.join(", ")
        ),
        Duration::from_secs(240),
    )
    .await;
    // 30 topics, 25 per connection: two connections, paced 3 s apart.
    assert_eq!(venue.connections(), 2);
    let opens: Vec<Duration> = venue
        .seen()
        .iter()
        .filter(|s| s.what == "open")
        .map(|s| s.at)
        .collect();
    assert!(opens[1] - opens[0] >= Duration::from_secs(3), "{opens:?}");
    let subs = |c| {
        venue
            .texts(c)
            .iter()
            .filter(|t| t.contains("subscribe"))
            .count()
    };
    assert_eq!((subs(1), subs(2)), (25, 5));
    let connected = events(&recs, "connected");
    let shards: BTreeSet<u64> = connected
        .iter()
        .map(|e| e["shard"].as_u64().unwrap())
        .collect();
    assert_eq!(shards, BTreeSet::from([1, 2]));
    assert!(connected.iter().all(|e| e["shards"] == 2));
    // Heartbeats by channel id count as data: no topic is reported silent.
    assert!(
        events(&recs, "subscription_silent").is_empty(),
        "{:?}",
        events(&recs, "subscription_silent")
    );
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    assert_eq!(reasons(&recs), ["shutdown", "shutdown"]);
    // Both connections' data (each sends the same ticks) is all there.
    assert_contiguous(&ticks(&recs), 10);
}

/// A fake venue for the presets whose keepalive is an app-level ping answered by the venue.
struct PingVenue {
    preset: &'static str,
    path: &'static str,
    topics: &'static str,
    ping: &'static str,
    pong: &'static str,
    ack: fn(&Value) -> Vec<Value>,
    idle_limit: Duration,
    data: fn(u64, &ConnState) -> Vec<String>,
}

#[tokio::test(start_paused = true)]
async fn app_ping_presets_stay_connected_past_their_idle_limit() {
    let cases = [
        PingVenue {
            preset: "bybit-spot",
            path: "/v5/public/spot",
            topics: "[\"orderbook.50.BTCUSDT\"]",
            ping: r#"{"op":"ping"}"#,
            pong: r#"{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}"#,
            ack: |v| {
                vec![
                    json!({"success":true,"ret_msg":"","conn_id":"c","req_id":v["req_id"],"op":"subscribe"}),
                ]
            },
            idle_limit: Duration::from_secs(600),
            data: |n, _| {
                vec![format!(
                    r#"{{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{{"u":{n},"n":{n}}}}}"#
                )]
            },
        },
        PingVenue {
            preset: "bybit-inverse",
            path: "/v5/public/inverse",
            topics: "[\"publicTrade.BTCUSD\"]",
            ping: r#"{"op":"ping"}"#,
            pong: r#"{"req_id":"","op":"pong","args":["1786310819680"],"conn_id":"c"}"#,
            ack: |v| {
                vec![
                    json!({"success":true,"ret_msg":"","conn_id":"c","req_id":v["req_id"],"op":"subscribe"}),
                ]
            },
            idle_limit: Duration::from_secs(600),
            data: |n, _| {
                vec![format!(
                    r#"{{"topic":"publicTrade.BTCUSD","type":"snapshot","data":[{{"n":{n}}}]}}"#
                )]
            },
        },
        PingVenue {
            preset: "bitstamp",
            path: "/",
            topics: "[\"live_trades_btcusd\"]",
            ping: r#"{"event":"bts:heartbeat"}"#,
            pong: r#"{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}"#,
            ack: |v| {
                vec![
                    json!({"event":"bts:subscription_succeeded","channel":v["data"]["channel"],"data":{}}),
                ]
            },
            idle_limit: Duration::from_secs(60),
            data: |n, _| {
                vec![format!(
                    r#"{{"data":{{"id":{n},"n":{n}}},"channel":"live_trades_btcusd","event":"trade"}}"#
                )]
            },
        },
        PingVenue {
            preset: "bitmex",
            path: "/realtime",
            topics: "[\"trade:XBTUSD\"]",
            ping: "ping",
            pong: "pong",
            ack: |v| {
                v["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| json!({"success":true,"subscribe":a,"request":v}))
                    .collect()
            },
            idle_limit: Duration::from_secs(10),
            data: |n, _| {
                vec![format!(
                    r#"{{"table":"trade","action":"insert","data":[{{"symbol":"XBTUSD","n":{n}}}]}}"#
                )]
            },
        },
        PingVenue {
            preset: "hyperliquid",
            path: "/ws",
            topics: "[\"trades:BTC\"]",
            ping: r#"{"method":"ping"}"#,
            pong: r#"{"channel":"pong"}"#,
            ack: |v| vec![json!({"channel":"subscriptionResponse","data":v})],
            idle_limit: Duration::from_secs(60),
            data: |n, _| {
                vec![format!(
                    r#"{{"channel":"trades","data":[{{"coin":"BTC","tid":{n},"n":{n}}}]}}"#
                )]
            },
        },
    ];
    for case in cases {
        // The fake needs plain fn pointers: keep the case's texts in statics it can reach.
        CASE.with(|c| *c.borrow_mut() = Some((case.ping, case.pong, case.ack)));
        let venue = FakeVenue::start(Venue {
            answer: |t, st| {
                CASE.with(|c| {
                    let (ping, pong, ack) = c.borrow().unwrap();
                    if t == ping {
                        return vec![pong.to_owned()];
                    }
                    let v = parse(t);
                    if t.contains("subscribe") {
                        st.subscribed = true;
                        return ack(&v).iter().map(Value::to_string).collect();
                    }
                    Vec::new()
                })
            },
            keeps_alive: any_client_frame,
            idle_limit: Some(case.idle_limit),
            data: case.data,
            // Quieter than every silence rule: only the pings keep the connection.
            data_every: Duration::from_secs(180),
            ..quiet_venue()
        })
        .await;
        let (recs, snap) = record_for(
            &format!(
                "venue = \"{}\"\nurl = \"{}\"\ntopics = {}",
                case.preset,
                venue.url(case.path),
                case.topics
            ),
            case.idle_limit * 3 + Duration::from_secs(360),
        )
        .await;
        let p = case.preset;
        venue.assert_never_closed(p);
        assert_eq!(venue.connections(), 1, "{p}");
        assert_eq!(reasons(&recs), ["shutdown"], "{p}");
        assert!(
            venue.texts(1).iter().filter(|t| *t == case.ping).count() >= 3,
            "{p}"
        );
        assert_eq!(snap.streams[0].subscriptions_failed, 0, "{p}");
        assert_contiguous(&ticks(&recs), 2);
    }
}

/// The ping text, its answer and the subscribe answer of the case being run.
type PingCase = (&'static str, &'static str, fn(&Value) -> Vec<Value>);

thread_local! {
    static CASE: std::cell::RefCell<Option<PingCase>> = const { std::cell::RefCell::new(None) };
}

#[tokio::test(start_paused = true)]
async fn bitstamp_reconnect_request_and_binance_shutdown_notice_replace_the_connection() {
    for (preset, path, topics, notice) in [
        (
            "bitstamp",
            "/",
            "[\"live_trades_btcusd\"]",
            r#"{"event":"bts:request_reconnect","channel":"","data":""}"#,
        ),
        (
            "binance-spot",
            "/stream",
            "[\"btcusdt@trade\"]",
            r#"{"e":"serverShutdown","E":1786310819680}"#,
        ),
        (
            "bitfinex",
            "/ws/2",
            "[\"trades:tBTCUSD\"]",
            r#"{"event":"info","code":20051,"msg":"Stopping. Please try to reconnect"}"#,
        ),
    ] {
        let venue = FakeVenue::start(Venue {
            answer: |t, st| {
                let v = parse(t);
                if v["event"] == "bts:heartbeat" {
                    return vec![json!({"event":"bts:heartbeat","channel":"","data":{"status":"success"}}).to_string()];
                }
                if v["event"] == "ping" {
                    return vec![json!({"event":"pong","ts":1,"cid":v["cid"]}).to_string()];
                }
                if v["event"] == "bts:subscribe" {
                    st.subscribed = true;
                    return vec![json!({"event":"bts:subscription_succeeded","channel":v["data"]["channel"],"data":{}}).to_string()];
                }
                if v["method"] == "SUBSCRIBE" {
                    st.subscribed = true;
                    return vec![json!({"result":null,"id":v["id"]}).to_string()];
                }
                if v["event"] == "subscribe" {
                    st.subscribed = true;
                    st.channels.push(5);
                    return vec![json!({"event":"subscribed","channel":"trades","chanId":5,"symbol":"tBTCUSD"}).to_string()];
                }
                Vec::new()
            },
            data: |n, _| {
                vec![
                    format!(r#"{{"data":{{"id":{n},"n":{n}}},"channel":"live_trades_btcusd","event":"trade"}}"#),
                    format!(r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","t":{n},"n":{n}}}}}"#),
                    format!(r#"[5,"te",[{n}],{{"n":{n}}}]"#),
                ]
            },
            data_every: Duration::from_secs(5),
            notice: Some((Duration::from_secs(60), notice)),
            ..quiet_venue()
        })
        .await;
        let (recs, _) = record_for(
            &format!(
                "venue = \"{preset}\"\nurl = \"{}\"\ntopics = {topics}",
                venue.url(path)
            ),
            Duration::from_secs(150),
        )
        .await;
        assert_eq!(venue.connections(), 2, "{preset}");
        assert_eq!(events(&recs, "reconnect_requested").len(), 1, "{preset}");
        assert_eq!(events(&recs, "connected")[1]["replaces"], 1, "{preset}");
        assert_eq!(reasons(&recs), ["replaced", "shutdown"], "{preset}");
        assert_contiguous(&ticks(&recs), 25);
    }
}

/// Whether OKX serves `channel` on `/ws/v5/business` (candles of every kind, `trades-all`) rather
/// than `/ws/v5/public`, per the "URL Path" of each channel in OKX's API docs
/// (https://www.okx.com/docs-v5/en/#public-data-websocket).
fn okx_on_business(channel: &str) -> bool {
    channel.contains("candle") || channel == "trades-all"
}

/// OKX v5: `ping` → `pong`; a channel subscribed on the path that serves it is acknowledged and
/// delivers, one asked for on the other path is refused with error 60018 (as OKX answers), and
/// the tick-by-tick full books (`books-l2-tbt`, `books50-l2-tbt`), which need a login and a VIP
/// tier, are refused with 60011 on an anonymous connection.
fn okx_venue() -> Venue {
    Venue {
        answer: |t, st| {
            if t == "ping" {
                return vec!["pong".to_owned()];
            }
            let v = parse(t);
            if v["op"] != "subscribe" {
                return Vec::new();
            }
            let business = st.target.ends_with("/ws/v5/business");
            let mut out = Vec::new();
            for a in v["args"].as_array().unwrap() {
                let c = a["channel"].as_str().unwrap();
                let inst = a["instId"].as_str().unwrap();
                if c.ends_with("-l2-tbt") {
                    out.push(
                        json!({"event":"error","code":"60011","msg":"Please log in","connId":"a1"})
                            .to_string(),
                    );
                } else if okx_on_business(c) == business {
                    st.streams.push(format!("{c}:{inst}"));
                    st.subscribed = true;
                    out.push(json!({"event":"subscribe","arg":a,"connId":"a1"}).to_string());
                } else {
                    out.push(json!({"event":"error","code":"60018","msg":format!("Wrong URL or channel:{c},instId:{inst} doesn't exist. Please use the correct URL, channel and parameters referring to API document."),"connId":"a1"}).to_string());
                }
            }
            out
        },
        // OKX closes a connection that has been silent for 30 s.
        idle_limit: Some(Duration::from_secs(30)),
        data: |n, st| {
            st.streams
                .iter()
                .map(|k| {
                    let (c, inst) = k.split_once(':').unwrap();
                    json!({"arg":{"channel":c,"instId":inst},"data":[{"instId":inst,"ts":n.to_string(),"n":n}]}).to_string()
                })
                .collect()
        },
        data_every: Duration::from_millis(100),
        ..quiet_venue()
    }
}

/// Records `topics` of preset `venue` through `door` (the preset's own URL, real time) until
/// `messages` have come, and returns the records.
async fn record_through(door: &FakeVenue, venue: &str, topics: &str, messages: u64) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[[stream]]\nname = \"v\"\nvenue = \"{venue}\"\ntopics = {topics}\nbackoff_initial = \"100ms\"\nbackoff_max = \"1s\"\n{}\n",
        door.front_door_toml()
    );
    let parsed = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let rec = start(config(dir.path(), parsed.streams), BASE_NS);
    peers::wait_for(&rec, Duration::from_secs(30), |s| {
        s.streams[0].messages.load(Relaxed) >= messages
    })
    .await;
    rec.stop().await;
    records(dir.path())
}

/// The `channel:instId` of every OKX data message recorded.
fn okx_keys(recs: &[Value]) -> BTreeSet<String> {
    recs.iter()
        .filter_map(|r| {
            let arg = r.get("msg")?.get("arg")?;
            r["msg"].get("data")?;
            Some(format!(
                "{}:{}",
                arg["channel"].as_str()?,
                arg["instId"].as_str()?
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_is_dialled_on_the_default_port_the_only_one_it_still_serves() {
    let pki = tempfile::tempdir().unwrap();
    let door = FakeVenue::front_door(okx_venue(), "ws.okx.com", pki.path()).await;
    let recs = record_through(
        &door,
        "okx",
        "[\"trades:BTC-USDT\", \"candle1m:BTC-USDT\"]",
        40,
    )
    .await;
    let connects = door.connects();
    assert!(!connects.is_empty());
    assert!(
        connects.iter().all(|c| c == "ws.okx.com:443"),
        "{connects:?}"
    );
    let targets: BTreeSet<String> = door.targets().into_iter().collect();
    assert_eq!(
        targets,
        BTreeSet::from(["/ws/v5/business".to_owned(), "/ws/v5/public".to_owned()])
    );
    assert_eq!(
        okx_keys(&recs),
        BTreeSet::from(["candle1m:BTC-USDT".to_owned(), "trades:BTC-USDT".to_owned()])
    );
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert!(events(&recs, "connect_failed").is_empty());
    door.assert_never_closed("okx");
}

/// Binance spot's rules (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):
/// at most 1024 streams on a connection; more than 5 incoming messages in a second, pings and
/// pongs included, close it with 1008; a protocol ping soon after the connection opens and then
/// every 20 s, to be answered within a minute. Streams named in the URL deliver at once,
/// `SUBSCRIBE` adds more; request targets longer than the 8004 characters Binance was measured to
/// accept are refused.
fn binance_spot_venue() -> Venue {
    Venue {
        admit: |target| {
            if target.len() > 8000 {
                return Err((414, "URI Too Long"));
            }
            let named = target
                .split_once("?streams=")
                .map_or(0, |(_, s)| s.split('/').count());
            if named > 1024 {
                return Err((400, "more than 1024 streams"));
            }
            Ok(())
        },
        answer: |t, st| {
            let v = parse(t);
            if v["method"] != "SUBSCRIBE" {
                return Vec::new();
            }
            let params: Vec<String> = v["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            if st.streams.len() + params.len() > 1024 {
                return vec![json!({"error":{"code":2,"msg":"Invalid request: more than 1024 streams"},"id":v["id"]}).to_string()];
            }
            st.streams.extend(params);
            st.subscribed = true;
            vec![json!({"result": null, "id": v["id"]}).to_string()]
        },
        keeps_alive: |i| matches!(i, Incoming::Pong),
        idle_limit: Some(Duration::from_secs(60)),
        max_per_sec: Some(5),
        server_ping: Some((Duration::from_millis(100), Duration::from_secs(20))),
        data: |n, st| {
            st.streams
                .iter()
                .map(|s| format!(r#"{{"stream":"{s}","data":{{"e":"trade","E":{n},"n":{n}}}}}"#))
                .collect()
        },
        data_every: Duration::from_secs(5),
        ..quiet_venue()
    }
}

/// The `stream` of every Binance combined-stream message recorded.
fn binance_streams(recs: &[Value]) -> BTreeSet<String> {
    recs.iter()
        .filter_map(|r| Some(r.get("msg")?.get("stream")?.as_str()?.to_owned()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn binance_spot_names_streams_in_the_url_and_paces_the_rest_under_the_message_limit() {
    let venue = FakeVenue::start(binance_spot_venue()).await;
    // 1000 streams: one connection (1024 at most), far more than one URL holds.
    let symbols: Vec<String> = (0..250).map(|i| format!("\"S{i:03}USDT\"")).collect();
    let (recs, _) = record_stepped(
        &format!(
            "venue = \"binance-spot\"\nurl = \"{}\"\nchannels = [\"trade\", \"aggTrade\", \"bookTicker\", \"depth@100ms\"]\nsymbols = [{}]",
            venue.url("/stream"),
            symbols.join(", ")
        ),
        Duration::from_secs(30),
        // Fine steps: the venue counts messages per second.
        Duration::from_millis(50),
    )
    .await;
    venue.assert_never_closed("binance-spot");
    assert_eq!(venue.connections(), 1);
    let target = &venue.targets()[0];
    let named = target
        .strip_prefix("/stream?streams=")
        .unwrap_or_else(|| panic!("{target}"))
        .split('/')
        .count();
    assert!(named > 150, "{named} streams in the URL");
    let subscribes = venue
        .texts(1)
        .iter()
        .filter(|t| t.contains("SUBSCRIBE"))
        .count();
    assert_eq!(subscribes, (1000 - named).div_ceil(100));
    // The recording says what was subscribed, in the URL and by message.
    let subscribed = events(&recs, "subscribed");
    assert_eq!(subscribed.len(), 1);
    assert_eq!(subscribed[0]["count"], subscribes);
    let in_url = subscribed[0]["in_url"].as_array().unwrap();
    assert_eq!(in_url.len(), named);
    assert_eq!(in_url[0], "s000usdt@trade");
    // Every stream delivers, on the one connection that was never cut.
    assert_eq!(binance_streams(&recs).len(), 1000);
    assert_eq!(reasons(&recs), ["shutdown"]);
}

/// The routed path of Binance USDⓈ-M that serves `stream`: `/public` for the high-frequency
/// book and trade streams, `/market` for the rest (Binance's "Important WebSocket Change
/// Notice" and each stream's "URL PATH",
/// https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams).
fn binance_usdm_path(stream: &str) -> &'static str {
    let kind = match stream.strip_prefix('!') {
        Some(all_market) => all_market.split('@').next(),
        None => stream.split('@').nth(1),
    }
    .unwrap_or("");
    let public = kind.starts_with("depth")
        || kind.starts_with("rpiDepth")
        || kind == "bookTicker"
        || kind == "trade";
    if public { "/public/" } else { "/market/" }
}

/// Binance USDⓈ-M: a stream named or subscribed on the path that serves it delivers; on the
/// other path it is acknowledged (if subscribed) and then silent.
fn binance_usdm_venue() -> Venue {
    Venue {
        answer: |t, st| {
            let v = parse(t);
            if v["method"] != "SUBSCRIBE" {
                return Vec::new();
            }
            for p in v["params"].as_array().unwrap() {
                st.streams.push(p.as_str().unwrap().to_owned());
            }
            st.subscribed = true;
            vec![json!({"result": null, "id": v["id"]}).to_string()]
        },
        max_per_sec: Some(10),
        data: |n, st| {
            st.streams
                .iter()
                .filter(|s| st.target.starts_with(binance_usdm_path(s)))
                .map(|s| format!(r#"{{"stream":"{s}","data":{{"e":"x","E":{n},"n":{n}}}}}"#))
                .collect()
        },
        data_every: Duration::from_millis(100),
        ..quiet_venue()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_usdm_streams_reach_the_path_that_serves_them_all_market_ones_included() {
    let pki = tempfile::tempdir().unwrap();
    let door = FakeVenue::front_door(binance_usdm_venue(), "fstream.binance.com", pki.path()).await;
    let public = [
        "btcusdt@trade",
        "btcusdt@rpiDepth@500ms",
        "btcusdt@depth20@100ms",
        "!bookTicker",
    ];
    let market = ["btcusdt@aggTrade", "!forceOrder@arr", "!markPrice@arr@1s"];
    let all: Vec<&str> = public.iter().chain(&market).copied().collect();
    let recs = record_through(&door, "binance-usdm", &format!("{all:?}"), 200).await;
    let connects = door.connects();
    assert!(
        !connects.is_empty() && connects.iter().all(|c| c == "fstream.binance.com:443"),
        "{connects:?}"
    );
    // Every stream delivers, all-market ones with their names as Binance spells them.
    let want: BTreeSet<String> = all.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(binance_streams(&recs), want);
    let targets: BTreeSet<String> = door.targets().into_iter().collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            format!("/market/stream?streams={}", market.join("/")),
            format!("/public/stream?streams={}", public.join("/")),
        ])
    );
    assert!(events(&recs, "connect_failed").is_empty());
    door.assert_never_closed("binance-usdm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okx_every_listed_channel_and_every_candle_kind_subscribe_anonymously_and_deliver() {
    let pki = tempfile::tempdir().unwrap();
    let door = FakeVenue::front_door(okx_venue(), "ws.okx.com", pki.path()).await;
    let preset = wsrec::venue::find("okx").unwrap();
    let mut topics: Vec<String> = preset
        .channels
        .iter()
        .map(|c| format!("{c}:BTC-USDT"))
        .collect();
    topics.push("mark-price-candle1m:BTC-USDT-SWAP".to_owned());
    topics.push("index-candle1m:BTC-USD".to_owned());
    let recs = record_through(&door, "okx", &format!("{topics:?}"), 400).await;
    let rejected = events(&recs, "subscription_rejected");
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(okx_keys(&recs), topics.into_iter().collect());
}

/// Bybit v5 spot: JSON ping → pong; every topic of a subscribe message is subscribed except
/// `allLiquidation.*`, which spot does not have (refused as Bybit refuses an unknown topic).
fn bybit_spot_venue() -> Venue {
    Venue {
        answer: |t, st| {
            let v = parse(t);
            match v["op"].as_str() {
                Some("ping") => vec![
                    json!({"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}).to_string(),
                ],
                Some("subscribe") => {
                    let mut out = Vec::new();
                    for a in v["args"].as_array().unwrap() {
                        let topic = a.as_str().unwrap();
                        if topic.starts_with("allLiquidation.") {
                            out.push(json!({"success":false,"ret_msg":format!("error:handler not found,topic:{topic}"),"conn_id":"c","req_id":v["req_id"],"op":"subscribe"}).to_string());
                        } else {
                            st.streams.push(topic.to_owned());
                        }
                    }
                    st.subscribed = true;
                    if out.is_empty() {
                        out.push(json!({"success":true,"ret_msg":"","conn_id":"c","req_id":v["req_id"],"op":"subscribe"}).to_string());
                    }
                    out
                }
                _ => Vec::new(),
            }
        },
        keeps_alive: |i| matches!(i, Incoming::Text(t) if t.contains(r#""op":"ping""#)),
        idle_limit: Some(Duration::from_secs(600)),
        data: |n, st| {
            st.streams
                .iter()
                .map(|t| format!(r#"{{"topic":"{t}","type":"snapshot","ts":{n},"data":{{"s":"BTCUSDT","n":{n}}}}}"#))
                .collect()
        },
        data_every: Duration::from_secs(5),
        ..quiet_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn bybit_spot_every_listed_channel_subscribes_and_delivers() {
    let venue = FakeVenue::start(bybit_spot_venue()).await;
    let preset = wsrec::venue::find("bybit-spot").unwrap();
    let (recs, snap) = record_for(
        &format!(
            "venue = \"bybit-spot\"\nurl = \"{}\"\nchannels = {:?}\nsymbols = [\"BTCUSDT\"]",
            venue.url("/v5/public/spot"),
            preset.channels
        ),
        Duration::from_secs(60),
    )
    .await;
    let rejected = events(&recs, "subscription_rejected");
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    let delivered: BTreeSet<String> = recs
        .iter()
        .filter_map(|r| Some(r.get("msg")?.get("topic")?.as_str()?.to_owned()))
        .collect();
    let want: BTreeSet<String> = preset
        .channels
        .iter()
        .map(|c| format!("{c}.BTCUSDT"))
        .collect();
    assert_eq!(delivered, want);
}
