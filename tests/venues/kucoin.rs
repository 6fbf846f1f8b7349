//! KuCoin (kucoin-spot, kucoin-futures) against a fake of its classic WebSocket API and of its
//! REST `bullet-public` endpoint (the "token desk"): every connect needs a fresh, single-use
//! token from the desk, which also names the server to dial and the ping interval; the venue
//! refuses a connection without a fresh token (HTTP 401), cuts a connection that has not pinged
//! within the interval plus its timeout, ends every connection after 24 h, and refuses
//! subscribe messages of more than 100 symbols and connections of more than 300 topics.
//!
//! Sources of the rules and shapes: https://www.kucoin.com/docs-new/websocket-api/base-info/introduction
//! (token, welcome, ping/pong, subscribe, ack, error; the 24 h token), the docs-new channel
//! pages (data frames), ccxt `ts/src/pro/kucoin.ts` (`token is expired`), crypto-ws-client
//! `clients/kucoin/utils.rs` (100 topics per subscribe, 100 messages per 10 s); the 509 errors'
//! words as users quote them (ccxt issue 25450, Kucoin/kucoin-python-sdk issue 32).

use std::cell::RefCell;

use tokio::io::AsyncReadExt;

use super::*;

/// The token desk's state: what it handed out and what the venue saw of it.
#[derive(Default)]
struct Desk {
    /// The WebSocket URL the answer names (the fake venue).
    endpoint: String,
    /// The `pingInterval` the answer gives, in milliseconds.
    ping_ms: u64,
    /// Answer the next this many requests with HTTP 500.
    fail: u32,
    /// Venue time of every request.
    asked: Vec<Duration>,
    /// Tokens handed out and not used yet.
    fresh: BTreeSet<String>,
    /// Tokens used, in order.
    used: Vec<String>,
    /// Connections refused for want of a fresh token.
    refused: u32,
    start: Option<Instant>,
}

thread_local! {
    // The fakes run on the test's single-threaded runtime.
    static DESK: RefCell<Desk> = RefCell::default();
}

impl Desk {
    fn answer(&mut self) -> String {
        self.asked
            .push(self.start.map_or(Duration::ZERO, |s| s.elapsed()));
        if self.fail > 0 {
            self.fail -= 1;
            let body = r#"{"code":"500000","msg":"Internal Server Error"}"#;
            return format!(
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        let token = format!("tok-{}", self.asked.len());
        self.fresh.insert(token.clone());
        // The shape of https://www.kucoin.com/docs-new/websocket-api/base-info/get-public-token-spot-margin.
        let body = json!({"code":"200000","data":{"token":token,"instanceServers":[{"endpoint":self.endpoint,"encrypt":true,"protocol":"websocket","pingInterval":self.ping_ms,"pingTimeout":10000}]}}).to_string();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

/// Starts the token desk handing out tokens for `endpoint`; returns its `token_url`.
async fn token_desk(endpoint: String, ping_ms: u64, fail: u32) -> String {
    DESK.with(|d| {
        *d.borrow_mut() = Desk {
            endpoint,
            ping_ms,
            fail,
            start: Some(Instant::now()),
            ..Desk::default()
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = peers::read_request(&mut tcp).await;
                assert!(
                    head.starts_with("POST /api/v1/bullet-public HTTP/1.1\r\n"),
                    "{head}"
                );
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                tcp.read_exact(&mut body).await.unwrap();
                let reply = DESK.with(|d| d.borrow_mut().answer());
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    format!("http://{addr}/api/v1/bullet-public")
}

fn desk<T>(f: impl FnOnce(&Desk) -> T) -> T {
    DESK.with(|d| f(&d.borrow()))
}

/// The value of `key` in a request target's query.
fn query<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    target
        .split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The venue admits a connection only with a fresh token from the desk, used once.
fn admit_fresh_token(target: &str) -> Result<(), (u16, &'static str)> {
    let token = query(target, "token").unwrap_or("").to_owned();
    DESK.with(|d| {
        let mut d = d.borrow_mut();
        if d.fresh.remove(&token) {
            d.used.push(token);
            Ok(())
        } else {
            d.refused += 1;
            Err((401, "token is missing, expired or used"))
        }
    })
}

/// KuCoin's welcome, naming the connection by the client's `connectId`.
fn welcome(target: &str, _: &mut ConnState) -> Vec<String> {
    vec![json!({"id": query(target, "connectId").unwrap_or(""), "type": "welcome"}).to_string()]
}

fn error(id: &Value, code: u32, words: &str) -> String {
    json!({"id": id, "type": "error", "code": code, "data": words}).to_string()
}

/// KuCoin's answers: pong to a ping, ack to a subscribe within the limits (100 symbols per
/// message, 300 topics per connection), an error otherwise.
fn kucoin_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    match v["type"].as_str() {
        Some("ping") => {
            vec![
                json!({"id": v["id"], "type": "pong", "timestamp": 1_729_817_200_000_000u64})
                    .to_string(),
            ]
        }
        Some("subscribe") => {
            let topic = v["topic"].as_str().unwrap_or("");
            let (channel, symbols) = topic.split_once(':').unwrap_or((topic, ""));
            let symbols: Vec<&str> = symbols.split(',').collect();
            if symbols.len() > 100 {
                return vec![error(
                    &v["id"],
                    509,
                    "exceed max subscription count limitation of 100 per time",
                )];
            }
            if st.streams.len() + symbols.len() > 300 {
                return vec![error(
                    &v["id"],
                    509,
                    "exceeds max subscription count limitation of 300 per session",
                )];
            }
            st.streams
                .extend(symbols.iter().map(|s| format!("{channel}:{s}")));
            st.subscribed = true;
            vec![json!({"id": v["id"], "type": "ack"}).to_string()]
        }
        _ => vec![error(&v["id"], 415, "type is not supported")],
    }
}

/// A trade on every subscribed topic, numbered by the venue tick (`n`), in the shape of the
/// spot Trade channel (https://www.kucoin.com/docs-new/3470072w0).
fn trades(n: u64, st: &ConnState) -> Vec<String> {
    st.streams
        .iter()
        .map(|topic| {
            let symbol = topic.split_once(':').map_or("", |(_, s)| s);
            json!({"topic": topic, "type": "message", "subject": "trade.l3match", "data": {"makerOrderId": "671b5007389355000701b1d3", "price": "67523", "sequence": n.to_string(), "side": "buy", "size": "0.003", "symbol": symbol, "takerOrderId": "671b50161777ff00074c168d", "time": "1729843222921000000", "tradeId": n.to_string(), "type": "match", "n": n}}).to_string()
        })
        .collect()
}

/// The fake venue: tokens checked at the door, a welcome, KuCoin's answers and limits, a JSON
/// ping required every `ping_ms` plus 10 s (the desk's answer says how often), 24 h lifetime.
fn kucoin_venue(idle: Duration) -> Venue {
    Venue {
        admit: admit_fresh_token,
        opened: welcome,
        answer: kucoin_answer,
        keeps_alive: |i| matches!(i, Incoming::Text(t) if t.contains(r#""type":"ping""#)),
        idle_limit: Some(idle),
        lifetime: Some(Duration::from_secs(24 * 3600)),
        data: trades,
        data_every: Duration::from_secs(10),
        // 100 messages per 10 s per connection, held here to a tenth of it per second.
        max_per_sec: Some(10),
        ..quiet_venue()
    }
}

/// Records `topics` with `preset` from `venue`, its tokens from the desk at `token_url`.
async fn record_kucoin(
    preset: &str,
    venue: &FakeVenue,
    token_url: &str,
    topics: &str,
    run: Duration,
) -> (Vec<Value>, wsrec::observe::stats::Snapshot) {
    record_for(
        &format!(
            "venue = \"{preset}\"\nurl = \"{}\"\ntoken_url = \"{token_url}\"\ntopics = {topics}",
            venue.url("/")
        ),
        run,
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn kucoin_takes_a_fresh_token_for_every_connect_pings_as_asked_and_is_replaced_before_24_hours()
 {
    // The desk asks for a ping every 4 s: the venue cuts a connection silent for 14 s, well
    // before the preset's own 18 s.
    let venue = FakeVenue::start(kucoin_venue(Duration::from_secs(14))).await;
    let token_url = token_desk(venue.url("/"), 4000, 0).await;
    let (recs, _) = record_kucoin(
        "kucoin-spot",
        &venue,
        &token_url,
        r#"["/market/match:BTC-USDT", "/market/match:ETH-USDT"]"#,
        Duration::from_secs(24 * 3600 + 1200),
    )
    .await;
    venue.assert_never_closed("kucoin-spot");
    assert_eq!(venue.connections(), 2, "{:?}", desk(|d| d.refused));
    // A token per connect, each used once, none refused.
    assert_eq!(desk(|d| d.used.clone()), ["tok-1", "tok-2"]);
    assert_eq!(desk(|d| (d.asked.len(), d.refused)), (2, 0));
    let targets = venue.targets();
    assert!(
        targets[0].starts_with("/?token=tok-1&connectId=wsrec-"),
        "{targets:?}"
    );
    assert_ne!(
        query(&targets[0], "connectId"),
        query(&targets[1], "connectId")
    );
    // One message for the channel with both symbols, acknowledged.
    let texts = venue.texts(1);
    assert_eq!(
        texts[0],
        r#"{"id":"1","type":"subscribe","topic":"/market/match:BTC-USDT,ETH-USDT","privateChannel":false,"response":true}"#
    );
    let pings = texts
        .iter()
        .filter(|t| t.contains(r#""type":"ping""#))
        .count();
    // The clock moves 5 s a step: a ping per step, where the preset's 18 s would give 4,700.
    assert!(
        pings > 14_000,
        "{pings} pings in 23.5 h: the token answer asked for one every 4 s"
    );
    // The replacement came before KuCoin's 24 h cut, make-before-break, nothing lost.
    let connected = events(&recs, "connected");
    assert_eq!(connected[1]["replaces"], 1);
    let at = (connected[1]["ts"].as_u64().unwrap() - BASE_NS) / 1_000_000_000;
    assert!(
        (23 * 3600 + 1800..24 * 3600).contains(&at),
        "replaced at {at} s"
    );
    assert_eq!(reasons(&recs), ["replaced", "shutdown"]);
    assert_contiguous(&ticks(&recs), 24 * 360);
    // The token shows only masked.
    assert_eq!(
        connected[0]["url"],
        format!("{}?token=***&connectId=***", venue.url("/"))
    );
    let all: String = recs.iter().map(Value::to_string).collect();
    assert!(!all.contains("tok-1") && !all.contains("tok-2"));
}

#[tokio::test(start_paused = true)]
async fn kucoin_token_request_that_fails_is_a_failed_connect_retried_with_backoff() {
    let venue = FakeVenue::start(kucoin_venue(Duration::from_secs(30))).await;
    let token_url = token_desk(venue.url("/"), 18_000, 2).await;
    let (recs, snap) = record_kucoin(
        "kucoin-spot",
        &venue,
        &token_url,
        r#"["/market/match:BTC-USDT"]"#,
        Duration::from_secs(60),
    )
    .await;
    let failed = events(&recs, "connect_failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    for f in &failed {
        assert_eq!(f["step"], "connect_token");
        assert_eq!(f["http_status"], 500);
        assert_eq!(f["url"], token_url);
        assert!(f["error"].as_str().unwrap().contains("HTTP 500"), "{f}");
    }
    // Backoff between the attempts (equal jitter from 1 s, doubling).
    assert_eq!(failed[1]["attempt"], 2);
    assert!(
        failed[1]["backoff_ms"].as_u64().unwrap() >= 500,
        "{}",
        failed[1]
    );
    let asked = desk(|d| d.asked.clone());
    assert_eq!(asked.len(), 3);
    assert!(
        asked[1] - asked[0] >= Duration::from_millis(500),
        "{asked:?}"
    );
    assert!(asked[2] - asked[1] >= Duration::from_secs(1), "{asked:?}");
    assert_eq!(snap.streams[0].connect_failures, 2);
    // Then the third token opens the connection and the data flows.
    assert_eq!(desk(|d| d.used.clone()), ["tok-3"]);
    assert_eq!(events(&recs, "connected").len(), 1);
    assert!(ticks(&recs).len() >= 5);
}

#[tokio::test(start_paused = true)]
async fn kucoin_venue_refuses_a_connection_without_a_fresh_token() {
    // The preset's own URL replaced by the venue's, without token_url: no token, refused.
    let venue = FakeVenue::start(kucoin_venue(Duration::from_secs(30))).await;
    token_desk(venue.url("/"), 18_000, 0).await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"kucoin-spot\"\nurl = \"{}\"\ntopics = [\"/market/match:BTC-USDT\"]",
            venue.url("/")
        ),
        Duration::from_secs(10),
    )
    .await;
    assert!(events(&recs, "connected").is_empty());
    let failed = events(&recs, "connect_failed");
    assert!(!failed.is_empty() && failed.iter().all(|f| f["http_status"] == 401));
    assert!(desk(|d| d.refused) >= 1);
}

#[tokio::test(start_paused = true)]
async fn kucoin_expired_token_error_is_a_reconnect_with_a_fresh_token() {
    let venue = FakeVenue::start(Venue {
        notice: Some((
            Duration::from_secs(120),
            r#"{"id":"wsrec-x","type":"error","code":401,"data":"token is expired"}"#,
        )),
        ..kucoin_venue(Duration::from_secs(30))
    })
    .await;
    let token_url = token_desk(venue.url("/"), 18_000, 0).await;
    let (recs, _) = record_kucoin(
        "kucoin-futures",
        &venue,
        &token_url,
        r#"["/contractMarket/execution:XBTUSDTM"]"#,
        Duration::from_secs(300),
    )
    .await;
    let asked = events(&recs, "reconnect_requested");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0]["reason"]
            .as_str()
            .unwrap()
            .contains("token is expired")
    );
    assert_eq!(desk(|d| d.used.clone()), ["tok-1", "tok-2"]);
    assert_eq!(reasons(&recs), ["replaced", "shutdown"]);
    assert_contiguous(&ticks(&recs), 28);
}

#[tokio::test(start_paused = true)]
async fn kucoin_futures_splits_a_long_symbol_list_under_the_message_and_connection_limits() {
    let venue = FakeVenue::start(kucoin_venue(Duration::from_secs(30))).await;
    let token_url = token_desk(venue.url("/"), 18_000, 0).await;
    let symbols: Vec<String> = (0..350).map(|i| format!("\"S{i:03}USDTM\"")).collect();
    let (recs, snap) = record_for(
        &format!(
            "venue = \"kucoin-futures\"\nurl = \"{}\"\ntoken_url = \"{token_url}\"\nchannels = [\"/contractMarket/execution\"]\nsymbols = [{}]",
            venue.url("/"),
            symbols.join(", ")
        ),
        Duration::from_secs(150),
    )
    .await;
    venue.assert_never_closed("kucoin-futures");
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert!(events(&recs, "subscription_silent").is_empty());
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    // 300 topics on the first connection (3 messages of 100), 50 on the second, a token each.
    assert_eq!(venue.connections(), 2);
    assert_eq!(desk(|d| d.used.len()), 2);
    let subscribes = |conn| {
        venue
            .texts(conn)
            .iter()
            .filter(|t| t.contains(r#""type":"subscribe""#))
            .map(|t| parse(t)["topic"].as_str().unwrap().split(',').count())
            .collect::<Vec<_>>()
    };
    assert_eq!(subscribes(1), [100, 100, 100]);
    assert_eq!(subscribes(2), [50]);
    // Every topic delivers.
    let topics: BTreeSet<&str> = recs
        .iter()
        .filter_map(|r| r.get("msg")?.get("topic")?.as_str())
        .collect();
    assert_eq!(topics.len(), 350);
}

/// One data frame of the real shape per listed channel (the docs-new channel pages; the
/// `topic` is the subscribed one).
fn kucoin_frame(topic: &str) -> Option<String> {
    let (channel, symbol) = topic.split_once(':')?;
    let symbol = symbol.split('_').next().unwrap_or(symbol);
    let (subject, data) = match channel {
        "/market/match" => (
            "trade.l3match",
            json!({"makerOrderId":"671b5007389355000701b1d3","price":"67523","sequence":"11067996711960577","side":"buy","size":"0.003","symbol":symbol,"takerOrderId":"671b50161777ff00074c168d","time":"1729843222921000000","tradeId":"11067996711960577","type":"match"}),
        ),
        "/market/level2" => (
            "trade.l2update",
            json!({"changes":{"asks":[["67993.3","1.21427407","11068004227252225"]],"bids":[]},"sequenceEnd":11068004227252225u64,"sequenceStart":11068004227252225u64,"symbol":symbol,"time":1729816425625u64}),
        ),
        "/market/ticker" => (
            "trade.ticker",
            json!({"bestAsk":"67218.7","bestAskSize":"1.92318539","bestBid":"67218.6","bestBidSize":"0.01045638","price":"67220","sequence":"14691455768","size":"0.00004316","time":1729757723612u64}),
        ),
        "/spotMarket/level1" => (
            "level1",
            json!({"asks":["68145.8","0.51987471"],"bids":["68145.7","1.29176201"],"timestamp":1730169209865u64}),
        ),
        "/spotMarket/level2Depth5" | "/spotMarket/level2Depth50" => (
            "level2",
            json!({"asks":[["67996.7","1.14213262"],["67996.8","0.70833262"]],"bids":[["67996.6","0.43621983"],["67996.5","0.00028143"]],"timestamp":1729822226746u64}),
        ),
        "/market/snapshot" => (
            "trade.snapshot",
            json!({"sequence":"1729785948734","data":{"askSize":1375.1096,"averagePrice":0.00000262,"baseCurrency":"BTC","bidSize":2486.4557,"board":0,"buy":0.00000263,"changePrice":0.00000005,"changeRate":0.0019,"close":0.000002631,"datetime":1729785948734u64,"high":0.00000268,"lastTradedPrice":0.000002631,"low":0.00000255,"market":"USDS","open":0.000002626,"quoteCurrency":"USDT","sell":0.000002632,"sort":100,"symbol":symbol,"symbolCode":symbol,"trading":true,"vol":1104516.3962,"volValue":2.8893,"baseCurrencyName":"Bitcoin","quoteCurrencyName":"Tether"}}),
        ),
        "/market/candles" => (
            "trade.candles.update",
            json!({"symbol":symbol,"candles":["1729839600","67644.9","67437.6","67724.8","67408.1","26.20815006","1769093.2683"],"time":1729843222921000000u64}),
        ),
        "/contractMarket/execution" => (
            "match",
            json!({"symbol":symbol,"sequence":1697215690,"side":"buy","size":1,"price":"67450.8","takerOrderId":"226218296346484737","makerOrderId":"226218279057563648","tradeId":"1729826339126","ts":1729826339127000000u64}),
        ),
        "/contractMarket/level2" => (
            "level2",
            json!({"sequence":1709400450243u64,"change":"90631.2,sell,2","timestamp":1729826563395u64}),
        ),
        "/contractMarket/tickerV2" => (
            "tickerV2",
            json!({"symbol":symbol,"sequence":1709284589209u64,"bestBidSize":713,"bestBidPrice":"67405.1","bestAskPrice":"67405.2","bestAskSize":1045,"ts":1729826338580000000u64}),
        ),
        "/contractMarket/ticker" => (
            "ticker",
            json!({"symbol":symbol,"sequence":45,"side":"sell","price":"67462.8","size":1,"tradeId":"1729826345451","bestBidSize":795,"bestBidPrice":"67462.7","bestAskPrice":"67462.8","bestAskSize":2134,"ts":1729826345448000000u64}),
        ),
        "/contractMarket/level2Depth5" | "/contractMarket/level2Depth50" => (
            "level2",
            json!({"bids":[["67436.8",24],["67436.7",3]],"sequence":1697215729,"timestamp":1729826386458u64,"ts":1729826386458u64,"asks":[["67436.9",1074],["67437",22]]}),
        ),
        "/contract/instrument" => (
            "mark.index.price",
            json!({"granularity":1000,"indexPrice":67476.5,"markPrice":67477.17,"timestamp":1729826376000u64}),
        ),
        "/contractMarket/limitCandle" => (
            "candle.stick",
            json!({"symbol":symbol,"candles":["1729826280","67447.9","67447.9","67447.9","67447.9","16","16"],"time":1729826340021u64}),
        ),
        _ => return None,
    };
    Some(json!({"topic": topic, "type": "message", "subject": subject, "data": data}).to_string())
}

/// The liveness fake's answer: KuCoin's ack, then one frame per symbol subscribed.
fn live_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    with_frames(kucoin_answer, kucoin_frame, t, st)
}

/// The KuCoin presets' fake for the liveness test (the stream's own URL: no token step).
pub(super) fn live(preset: &str) -> Option<Live> {
    let symbol = match preset {
        "kucoin-spot" => "BTC-USDT",
        "kucoin-futures" => "XBTUSDTM",
        _ => return None,
    };
    Some(Live {
        encode: text_frame,
        symbol,
        answer: live_answer,
        frame: kucoin_frame,
    })
}
