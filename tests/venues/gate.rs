//! Gate API v4 (`gate-spot`, `gate-futures`) against a fake Gate that keeps Gate's rules: it
//! serves `spot.*` channels only on the spot path and `futures.*` only on the USDT futures
//! path; it refuses a request whose `time` is not the current time in seconds (Gate asks for
//! one within 60 s of its clock), whose payload is not in the channel's order (a book's symbol
//! before its frequency, a candle's interval before its symbol) or that names an unknown pair;
//! and it closes a connection on which the client sent no app ping for a minute (Gate cuts a
//! connection quiet for a minute, https://github.com/gateio/gatews/issues/34).
//!
//! Frames are of Gate's real shape, as its documentation shows them and ccxt
//! (`ts/src/pro/gate.ts`) and cryptofeed (`cryptofeed/exchanges/gateio.py`) quote them.

use super::*;

/// The path each market is served on, from the preset's own URL.
fn path_of(preset: &str) -> String {
    let p = wsrec::net::venue::find(preset).unwrap();
    url::Url::parse(p.url).unwrap().path().to_owned()
}

/// The market a connection serves, from its path: `spot` or `futures`.
fn market(target: &str) -> &'static str {
    if target.starts_with("/v4/ws/usdt") {
        "futures"
    } else {
        "spot"
    }
}

/// Pairs Gate lists (the fake refuses others).
const PAIRS: &[&str] = &["BTC_USDT", "ETH_USDT", "GT_USDT"];

thread_local! {
    /// When the test's venue time began: the recorder's clock reads [`BASE_NS`] then and
    /// follows tokio's (paused) time, as the fake's clock does.
    static EPOCH: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Starts the venue's clock (at [`BASE_NS`], with the recorder's).
fn start_clock() {
    EPOCH.with(|e| e.set(Some(Instant::now())));
}

/// Unix seconds now on the venue's clock.
fn unix_now() -> u64 {
    let since = EPOCH
        .with(|e| e.get())
        .map_or(Duration::ZERO, |t| t.elapsed());
    BASE_NS / 1_000_000_000 + since.as_secs()
}

/// Gate's answer to a request: success, or the error it names.
fn gate_answer(v: &Value, error: Option<String>) -> String {
    let mut a = json!({"time": unix_now(), "time_ms": unix_now() * 1000, "id": v["id"], "conn_id": "b61f70b2e6bcca91",
        "channel": v["channel"], "event": "subscribe", "payload": v["payload"]});
    match error {
        Some(e) => {
            a["error"] = json!({"code": 2, "message": e});
            a["result"] = Value::Null;
        }
        None => a["result"] = json!({"status": "success"}),
    }
    a.to_string()
}

/// Why Gate refuses a subscribe request on a connection serving `market`, if it does.
fn refusal(v: &Value, market: &str) -> Option<String> {
    let channel = v["channel"].as_str().unwrap_or("");
    let payload = strings(&v["payload"]);
    let time = v["time"].as_u64().unwrap_or(0);
    if time.abs_diff(unix_now()) > 60 {
        return Some(format!("invalid time {time}"));
    }
    let (m, kind) = channel.split_once('.').unwrap_or(("", ""));
    if m != market {
        return Some(format!("unknown channel {channel}"));
    }
    let pair_ok = |p: &str| PAIRS.contains(&p);
    let ok = match kind {
        "trades" | "book_ticker" | "tickers" => {
            !payload.is_empty() && payload.iter().all(|p| pair_ok(p))
        }
        "order_book_update" if m == "spot" => {
            payload.len() == 2 && pair_ok(&payload[0]) && ["20ms", "100ms"].contains(&&*payload[1])
        }
        "order_book_update" => {
            payload.len() == 3
                && pair_ok(&payload[0])
                && ["20ms", "100ms"].contains(&&*payload[1])
                && ["20", "50", "100"].contains(&&*payload[2])
        }
        "order_book" => {
            payload.len() == 3
                && pair_ok(&payload[0])
                && ["5", "10", "20", "50", "100"].contains(&&*payload[1])
                && ["100ms", "1000ms"].contains(&&*payload[2])
        }
        "candlesticks" => {
            payload.len() == 2
                && [
                    "10s", "1m", "5m", "15m", "30m", "1h", "4h", "8h", "1d", "7d",
                ]
                .contains(&&*payload[0])
                && pair_ok(&payload[1])
        }
        _ => false,
    };
    if ok {
        None
    } else {
        Some(format!("invalid payload {payload:?} for {channel}"))
    }
}

/// One data frame of Gate's real shape for `channel` and `symbol` (a candle's `interval`),
/// numbered `n` (a field of the test's own, for the tick count).
fn gate_frame(channel: &str, symbol: &str, interval: &str, n: u64) -> String {
    let result = match channel {
        "spot.trades" => {
            json!({"id": 309143071u64 + n, "create_time": 1606292218, "create_time_ms": "1606292218213.4578", "side": "sell", "currency_pair": symbol, "amount": "16.4700000000", "price": "0.4705000000", "n": n})
        }
        "futures.trades" => {
            json!([{"size": -108, "id": 27753479u64 + n, "create_time": 1545136464, "create_time_ms": 1545136464123u64, "price": "96.4", "contract": symbol, "n": n}])
        }
        "spot.book_ticker" | "futures.book_ticker" => {
            json!({"t": 1671363004228u64, "u": 9793320464u64 + n, "s": symbol, "b": "16716.8", "B": "0.0134", "a": "16716.9", "A": "0.0353", "n": n})
        }
        "spot.order_book_update" => {
            json!({"t": 1650189272515u64, "e": "depthUpdate", "E": 1650189272, "s": symbol, "U": 140595902 + n, "u": 140595902 + n, "b": [["2.51518", "228.119"]], "a": [["2.5182", "4.199"]], "n": n})
        }
        "futures.order_book_update" => {
            json!({"t": 1650188898938u64, "s": symbol, "U": 1577718307 + n, "u": 1577718307 + n, "b": [{"p": "2.5178", "s": 0}], "a": [{"p": "2.52", "s": 0}], "n": n})
        }
        "spot.order_book" => {
            json!({"t": 1606295412123u64, "lastUpdateId": 48791820 + n, "s": symbol, "l": "20", "bids": [["19079.55", "0.0195"]], "asks": [["19080.24", "0.1638"]], "n": n})
        }
        "spot.tickers" => {
            json!({"currency_pair": symbol, "last": "43444.82", "lowest_ask": "43444.82", "highest_bid": "43444.81", "change_percentage": "-4.0036", "base_volume": "5182.5412425462", "quote_volume": "227267634.93123952", "high_24h": "47698", "low_24h": "42721.03", "n": n})
        }
        "futures.tickers" => {
            json!([{"contract": symbol, "last": "118.4", "change_percentage": "0.77", "funding_rate": "-0.000114", "mark_price": "118.35", "index_price": "118.36", "total_size": "73648", "volume_24h": "745487577", "n": n}])
        }
        "spot.candlesticks" => {
            json!({"t": "1606292580", "v": "2362.32035", "c": "19128.1", "h": "19128.1", "l": "19128.1", "o": "19128.1", "n": format!("{interval}_{symbol}"), "a": "3.8283"})
        }
        "futures.candlesticks" => {
            json!([{"t": 1545129300, "v": 27525555, "c": "95.4", "h": "96.9", "l": "89.5", "o": "94.3", "n": format!("{interval}_{symbol}"), "a": "314732.87"}])
        }
        other => panic!("the fake Gate has no frame for {other}"),
    };
    json!({"time": 1606292218, "time_ms": 1606292218231u64, "channel": channel, "event": "update", "result": result})
        .to_string()
}

/// The symbol and interval a subscribe payload names (candles name the interval first).
fn payload_topic(channel: &str, payload: &[String]) -> Vec<(String, String)> {
    if channel.ends_with(".candlesticks") {
        return vec![(payload[1].clone(), payload[0].clone())];
    }
    if channel.ends_with("order_book_update") || channel.ends_with(".order_book") {
        return vec![(payload[0].clone(), String::new())];
    }
    payload.iter().map(|p| (p.clone(), String::new())).collect()
}

/// The fake Gate's answer to one client text: the pong, or the request's answer and, once
/// subscribed, its streams noted as `channel|symbol|interval`.
fn answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    let channel = v["channel"].as_str().unwrap_or("");
    let market = market(&st.target);
    if channel == format!("{market}.ping") {
        // A ping is a request too: Gate wants its time.
        let time = v["time"].as_u64().unwrap_or(0);
        if time.abs_diff(unix_now()) > 60 {
            return vec![json!({"time": unix_now(), "channel": channel, "event": "", "error": {"code": 2, "message": format!("invalid time {time}")}, "result": null}).to_string()];
        }
        return vec![json!({"time": unix_now(), "time_ms": unix_now() * 1000, "conn_id": "b61f70b2e6bcca91", "channel": format!("{market}.pong"), "event": "", "result": null}).to_string()];
    }
    if v["event"] != "subscribe" {
        return Vec::new();
    }
    if let Some(e) = refusal(&v, market) {
        return vec![gate_answer(&v, Some(e))];
    }
    for (symbol, interval) in payload_topic(channel, &strings(&v["payload"])) {
        st.streams.push(format!("{channel}|{symbol}|{interval}"));
    }
    st.subscribed = true;
    vec![gate_answer(&v, None)]
}

/// A fake Gate: answers pings and requests, sends a frame per stream every `every`, and cuts a
/// connection that sent no app ping for a minute.
fn gate_venue(every: Duration) -> Venue {
    start_clock();
    Venue {
        answer,
        keeps_alive: |i| matches!(i, Incoming::Text(t) if t.contains(".ping\"")),
        idle_limit: Some(Duration::from_secs(60)),
        data: |n, st| {
            st.streams
                .iter()
                .map(|s| {
                    let mut p = s.split('|');
                    let (c, sym, i) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
                    gate_frame(c, sym, i, n)
                })
                .collect()
        },
        data_every: every,
        ..quiet_venue()
    }
}

/// The topic keys of the data frames recorded (as Gate names them: channel and symbol, and a
/// candle's interval).
fn delivered(recs: &[Value]) -> BTreeSet<String> {
    recs.iter()
        .filter_map(|r| r.get("msg"))
        .filter(|m| m["event"] == "update")
        .map(|m| {
            let c = m["channel"].as_str().unwrap();
            let r = if m["result"].is_array() {
                &m["result"][0]
            } else {
                &m["result"]
            };
            if c.ends_with(".candlesticks") {
                let (i, s) = r["n"].as_str().unwrap().split_once('_').unwrap();
                format!("{c}:{s}:{i}")
            } else {
                let s = r["s"].as_str().or(r["currency_pair"].as_str());
                format!("{c}:{}", s.or(r["contract"].as_str()).unwrap())
            }
        })
        .collect()
}

/// Records every listed channel of `preset` for BTC_USDT on its own path for 10 minutes of a
/// feed quiet for 100 s at a time (longer than Gate's idle cut: only the client's pings keep
/// the connection), and checks Gate had nothing to refuse or cut.
async fn every_channel_on_a_quiet_feed(preset: &str) {
    let venue = FakeVenue::start(gate_venue(Duration::from_secs(100))).await;
    let p = wsrec::net::venue::find(preset).unwrap();
    let (recs, snap) = record_for(
        &format!(
            "venue = \"{preset}\"\nurl = \"{}\"\nchannels = {:?}\nsymbols = [\"BTC_USDT\"]",
            venue.url(&path_of(preset)),
            p.channels
        ),
        Duration::from_secs(600),
    )
    .await;
    venue.assert_never_closed(preset);
    assert_eq!(venue.connections(), 1, "{preset}");
    assert_eq!(reasons(&recs), ["shutdown"], "{preset}");
    let rejected = events(&recs, "subscription_rejected");
    assert!(rejected.is_empty(), "{preset}: {rejected:?}");
    assert!(events(&recs, "subscription_silent").is_empty(), "{preset}");
    assert_eq!(snap.streams[0].subscriptions_failed, 0, "{preset}");
    // Every listed channel delivers, under the key its topic has.
    let want: BTreeSet<String> = p
        .channels
        .iter()
        .map(|c| {
            let t = (p.combine)(c, "BTC_USDT");
            wsrec::net::venue::protocol::topic_key(p.family, &t)
        })
        .collect();
    assert_eq!(delivered(&recs), want, "{preset}");
    // Only the app pings kept the connection: one every 20 s.
    let ping = format!("{}.ping", market(&path_of(preset)));
    let pings = venue
        .texts(1)
        .iter()
        .filter(|t| parse(t)["channel"] == ping.as_str())
        .count();
    assert!(
        (28..=30).contains(&pings),
        "{preset}: {pings} pings in 10 min"
    );
    assert_contiguous(&ticks(&recs), 5);
}

#[tokio::test(start_paused = true)]
async fn gate_spot_every_channel_subscribes_on_its_path_and_pings_keep_a_quiet_feed() {
    every_channel_on_a_quiet_feed("gate-spot").await;
}

#[tokio::test(start_paused = true)]
async fn gate_futures_every_channel_subscribes_on_its_path_and_pings_keep_a_quiet_feed() {
    every_channel_on_a_quiet_feed("gate-futures").await;
}

#[tokio::test(start_paused = true)]
async fn gate_refusal_names_the_topic_of_its_request_and_large_lists_are_split() {
    let venue = FakeVenue::start(gate_venue(Duration::from_secs(5))).await;
    // 130 trade topics (100 per connection, 20 per message) and one book of an unknown pair.
    let mut topics: Vec<String> = (0..130)
        .map(|i| format!("\"spot.trades:P{i:03}_USDT\""))
        .collect();
    topics.push("\"spot.order_book_update:NOPE_USDT:100ms\"".to_owned());
    topics.push("\"spot.order_book_update:BTC_USDT:100ms\"".to_owned());
    let (recs, snap) = record_for(
        &format!(
            "venue = \"gate-spot\"\nurl = \"{}\"\ntopics = [{}]",
            venue.url(&path_of("gate-spot")),
            topics.join(", ")
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(venue.connections(), 2);
    // Connection 1: 100 trade topics in 5 messages of 20 symbols.
    let subs = |c| -> Vec<Value> {
        venue
            .texts(c)
            .iter()
            .map(|t| parse(t))
            .filter(|v| v["event"] == "subscribe")
            .collect()
    };
    let first = subs(1);
    assert_eq!(first.len(), 5);
    assert!(
        first
            .iter()
            .all(|v| v["payload"].as_array().unwrap().len() == 20)
    );
    // Connection 2: the books each in a request of their own, then the last 30 trade symbols.
    let second = subs(2);
    assert_eq!(
        second
            .iter()
            .map(|v| v["payload"].clone())
            .collect::<Vec<_>>()[..2],
        [json!(["NOPE_USDT", "100ms"]), json!(["BTC_USDT", "100ms"])]
    );
    // The fake knows none of the P### pairs: every trade request is refused, by id, naming
    // its topics; the unknown book alone of the two books.
    let rejected = events(&recs, "subscription_rejected");
    let refused: BTreeSet<String> = rejected
        .iter()
        .flat_map(|e| strings(&e["topics"]))
        .collect();
    assert_eq!(refused.len(), 131, "{rejected:?}");
    assert!(refused.contains("spot.order_book_update:NOPE_USDT:100ms"));
    assert!(!refused.contains("spot.order_book_update:BTC_USDT:100ms"));
    assert!(
        rejected
            .iter()
            .any(|e| e["reason"].as_str().unwrap().contains("NOPE_USDT")),
        "{rejected:?}"
    );
    assert_eq!(snap.streams[0].subscriptions_failed, 131);
    assert!(delivered(&recs).contains("spot.order_book_update:BTC_USDT"));
}

#[tokio::test(start_paused = true)]
async fn gate_requests_carry_the_time_they_are_sent_at_after_every_reconnect() {
    // The network drops every connection after 2 hours: each reconnect's request must carry
    // the time it is sent at (Gate asks for one within 60 s of its clock), not the first's.
    let venue = FakeVenue::start(Venue {
        lifetime: Some(Duration::from_secs(7200)),
        ..gate_venue(Duration::from_secs(50))
    })
    .await;
    let (recs, snap) = record_for(
        &format!(
            "venue = \"gate-spot\"\nurl = \"{}\"\ntopics = [\"spot.trades:BTC_USDT\", \"spot.order_book_update:BTC_USDT:100ms\"]",
            venue.url(&path_of("gate-spot"))
        ),
        Duration::from_secs(3 * 7200 + 600),
    )
    .await;
    assert_eq!(venue.connections(), 4);
    let rejected = events(&recs, "subscription_rejected");
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    // The last connection's requests carry its own time, about 6 hours after the first's.
    let times = |c| -> Vec<u64> {
        venue
            .texts(c)
            .iter()
            .map(|t| parse(t))
            .filter(|v| v["event"] == "subscribe")
            .map(|v| v["time"].as_u64().unwrap())
            .collect()
    };
    let (first, last) = (times(1), times(4));
    assert_eq!((first.len(), last.len()), (2, 2));
    assert!(last[0] - first[0] >= 3 * 7200, "{first:?} {last:?}");
    // The `subscribed` event lists the requests as sent, with their time.
    let subscribed = events(&recs, "subscribed");
    let listed: Vec<u64> = strings(&subscribed[3]["messages"])
        .iter()
        .map(|m| parse(m)["time"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, last);
}

/// The topic's parts: channel, symbol, and a candle's interval.
fn topic_parts(topic: &str) -> (&str, &str, &str) {
    let mut p = topic.split(':');
    let c = p.next().unwrap_or("");
    let s = p.next().unwrap_or("");
    let i = if c.ends_with(".candlesticks") {
        p.next().unwrap_or("")
    } else {
        ""
    };
    (c, s, i)
}

/// The fake Gate for the liveness test of every preset's channels: answers, then one frame per
/// topic asked for.
fn live_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    if v["event"] != "subscribe" {
        return Vec::new();
    }
    let channel = v["channel"].as_str().unwrap();
    let mut out = vec![gate_answer(&v, None)];
    for (symbol, interval) in payload_topic(channel, &strings(&v["payload"])) {
        out.push(gate_frame(channel, &symbol, &interval, 1));
    }
    st.subscribed = true;
    out
}

/// Gate's fake for [`super::every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    preset.starts_with("gate-").then_some(Live {
        encode: text_frame,
        symbol: "BTC_USDT",
        answer: live_answer,
        frame: |topic| {
            let (c, s, i) = topic_parts(topic);
            Some(gate_frame(c, s, i, 1))
        },
    })
}

#[tokio::test]
async fn gate_presets_dial_the_hosts_and_paths_gate_serves_each_market_on() {
    for (preset, host, path, topic) in [
        (
            "gate-spot",
            "api.gateio.ws",
            "/ws/v4/",
            "spot.trades:BTC_USDT",
        ),
        (
            "gate-futures",
            "fx-ws.gateio.ws",
            "/v4/ws/usdt",
            "futures.trades:BTC_USDT",
        ),
    ] {
        let pki = tempfile::tempdir().unwrap();
        let door =
            FakeVenue::front_door(gate_venue(Duration::from_millis(100)), host, pki.path()).await;
        let recs = record_through(&door, preset, &format!("[\"{topic}\"]"), 5).await;
        assert!(
            door.connects().iter().all(|c| *c == format!("{host}:443")),
            "{preset}: {:?}",
            door.connects()
        );
        assert!(
            door.targets().iter().all(|t| t == path),
            "{preset}: {:?}",
            door.targets()
        );
        // The fake serves a market's channels only on its path: the trades were accepted.
        assert!(
            events(&recs, "subscription_rejected").is_empty(),
            "{preset}"
        );
        assert!(delivered(&recs).contains(topic), "{preset}");
    }
}
