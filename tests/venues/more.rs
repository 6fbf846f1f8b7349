//! Binance COIN-M futures and Bybit options: presets of families with fakes in `main.rs`, but
//! with rules of their own. COIN-M serves every stream on one path (no USDⓈ-M-style routing),
//! takes at most 200 streams a connection and 10 incoming messages a second, pings every 3
//! minutes and cuts connections at 24 h. The Bybit option stream answers subscriptions with
//! `COMMAND_RESP` (success and fail topics), pongs with `{"op":"pong","args":[…]}`, takes trades
//! per base coin, and draws on stream.bybit.com's connection budget.

use super::*;

/// Binance COIN-M's streams per connection (the lower of the two figures Binance publishes).
const COINM_MAX_STREAMS: usize = 200;

/// Binance COIN-M: every stream on `/stream` (a routed path such as `/public/stream` or
/// `/market/stream` is not served: 404), at most 200 streams a connection, 10 incoming messages
/// a second, a ping every 3 minutes that must be answered within 10, a 24-hour lifetime
/// (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams).
fn coinm_venue() -> Venue {
    Venue {
        admit: |target| {
            if !target.starts_with("/stream") {
                return Err((404, "Not Found"));
            }
            let named = target
                .split_once("?streams=")
                .map_or(0, |(_, s)| s.split('/').count());
            if named > COINM_MAX_STREAMS {
                return Err((400, "more than 200 streams"));
            }
            Ok(())
        },
        answer: |t, st| {
            let v = parse(t);
            if v["method"] != "SUBSCRIBE" {
                return Vec::new();
            }
            let params = strings(&v["params"]);
            if st.streams.len() + params.len() > COINM_MAX_STREAMS {
                return vec![json!({"error":{"code":2,"msg":"Invalid request: more than 200 streams"},"id":v["id"]}).to_string()];
            }
            st.streams.extend(params);
            st.subscribed = true;
            vec![json!({"result": null, "id": v["id"]}).to_string()]
        },
        keeps_alive: |i| matches!(i, Incoming::Pong),
        idle_limit: Some(Duration::from_secs(600)),
        lifetime: Some(Duration::from_secs(24 * 3600)),
        max_per_sec: Some(10),
        server_ping: Some((Duration::from_secs(180), Duration::from_secs(180))),
        data: |n, st| {
            st.streams
                .iter()
                .map(|s| format!(r#"{{"stream":"{s}","data":{{"e":"aggTrade","E":{n},"a":{n},"s":"BTCUSD_PERP","n":{n}}}}}"#))
                .collect()
        },
        data_every: Duration::from_secs(10),
        ..quiet_venue()
    }
}

/// `n` COIN-M contracts, as a TOML array.
fn coinm_symbols(n: usize) -> String {
    let s: Vec<String> = (0..n).map(|i| format!("\"S{i:03}USD_PERP\"")).collect();
    format!("[{}]", s.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_coinm_streams_all_go_to_the_one_path_it_serves() {
    let pki = tempfile::tempdir().unwrap();
    let venue = Venue {
        data_every: Duration::from_millis(100),
        ..coinm_venue()
    };
    let door = FakeVenue::front_door(venue, "dstream.binance.com", pki.path()).await;
    // Streams USDⓈ-M would send to /public and to /market, and an all-market one.
    let topics = [
        "btcusd_perp@depth@100ms",
        "btcusd_perp@bookTicker",
        "btcusd_perp@aggTrade",
        "btcusd_perp@markPrice@1s",
        "!forceOrder@arr",
    ];
    let recs = record_through(&door, "binance-coinm", &format!("{topics:?}"), 20).await;
    let connects = door.connects();
    assert!(
        !connects.is_empty() && connects.iter().all(|c| c == "dstream.binance.com:443"),
        "{connects:?}"
    );
    assert_eq!(
        door.targets(),
        [format!("/stream?streams={}", topics.join("/"))]
    );
    assert!(events(&recs, "connect_failed").is_empty());
    let want: BTreeSet<String> = topics.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(binance_streams(&recs), want);
    door.assert_never_closed("binance-coinm");
}

#[tokio::test(start_paused = true)]
async fn binance_coinm_splits_at_200_streams_and_paces_subscribes_under_ten_messages_a_second() {
    let venue = FakeVenue::start(coinm_venue()).await;
    // 450 streams: three connections; long names, so each URL holds only part of its streams
    // and 2 streams a message (set here) make dozens of subscribe messages for the pacing to
    // hold.
    let (recs, snap) = record_stepped(
        &format!(
            "venue = \"binance-coinm\"\nurl = \"{}\"\nmax_topics_per_message = 2\nchannels = [\"depth20@100ms\", \"markPrice@1s\", \"aggTrade\"]\nsymbols = {}",
            venue.url("/stream"),
            coinm_symbols(150)
        ),
        Duration::from_secs(60),
        // Fine steps: the venue counts messages per second.
        Duration::from_millis(50),
    )
    .await;
    venue.assert_never_closed("binance-coinm");
    assert_eq!(venue.connections(), 3);
    let subscribed = events(&recs, "subscribed");
    assert_eq!(subscribed.len(), 3);
    let (mut messages, mut full) = (0, 0);
    for e in &subscribed {
        let in_url = e["in_url"].as_array().unwrap().len();
        assert!(in_url < COINM_MAX_STREAMS, "{in_url} streams in the URL");
        messages += e["count"].as_u64().unwrap();
        full +=
            usize::from(in_url + 2 * e["count"].as_u64().unwrap() as usize >= COINM_MAX_STREAMS);
    }
    // Two connections of 200 streams, one of 50; the full ones need about 25 messages each,
    // more than the venue takes in one second.
    assert_eq!(full, 2);
    assert!(messages >= 40, "{messages} subscribe messages in all");
    assert_eq!(binance_streams(&recs).len(), 450);
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    assert_eq!(reasons(&recs), ["shutdown"; 3]);
}

#[tokio::test(start_paused = true)]
async fn binance_coinm_answers_pings_and_is_replaced_before_the_24_hour_cut() {
    let venue = FakeVenue::start(coinm_venue()).await;
    let (recs, _) = record_for(
        &format!(
            "venue = \"binance-coinm\"\nurl = \"{}\"\ntopics = [\"btcusd_perp@aggTrade\"]",
            venue.url("/stream")
        ),
        Duration::from_secs(24 * 3600 + 1200),
    )
    .await;
    venue.assert_never_closed("binance-coinm");
    assert_eq!(venue.connections(), 2);
    assert_eq!(venue.targets(), ["/stream?streams=btcusd_perp@aggTrade"; 2]);
    let pongs = venue
        .seen()
        .iter()
        .filter(|s| s.conn == 1 && s.what == "pong")
        .count();
    assert!(pongs >= 400, "{pongs} pongs to 3-minutely pings");
    assert_eq!(reasons(&recs), ["replaced", "shutdown"]);
    assert_contiguous(&ticks(&recs), 24 * 360);
}

/// The option stream's answer to a ping (Bybit's connect page: option and private streams).
fn option_pong() -> String {
    json!({"req_id":"","op":"pong","args":["1786310819680"],"conn_id":"d2lmgvs6qrc1a1s1l1n0-4y4m"})
        .to_string()
}

/// Whether Bybit's option stream serves a topic: trades per base coin, books of 25 and 100
/// levels and tickers per option symbol (no klines, liquidations or other depths).
fn option_topic(topic: &str) -> bool {
    match topic.split_once('.') {
        Some(("publicTrade", coin)) => !coin.contains('-'),
        Some(("orderbook", rest)) => rest.starts_with("25.") || rest.starts_with("100."),
        Some(("tickers", sym)) => sym.contains('-'),
        _ => false,
    }
}

/// Answers a ping or a subscribe message the way Bybit's option stream does: the pong, or one
/// `COMMAND_RESP` listing the topics it took and those it refused.
fn option_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    match v["op"].as_str() {
        Some("ping") => vec![option_pong()],
        Some("subscribe") => {
            let (ok, failed): (Vec<String>, Vec<String>) = strings(&v["args"])
                .into_iter()
                .partition(|t| option_topic(t));
            st.streams.extend(ok.iter().cloned());
            st.subscribed = true;
            vec![json!({"success":true,"conn_id":"d2lmgvs6qrc1a1s1l1n0-4y4m","req_id":v["req_id"],"data":{"failTopics":failed,"successTopics":ok},"type":"COMMAND_RESP"}).to_string()]
        }
        _ => Vec::new(),
    }
}

/// Bybit options: as Bybit spot's fake (JSON pings only keep a connection, cut after 10
/// minutes without one), with the option stream's answers, and quiet: a message a minute.
fn option_venue() -> Venue {
    Venue {
        answer: option_answer,
        data_every: Duration::from_secs(60),
        ..bybit_spot_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn bybit_option_pings_past_the_ten_minute_cut_and_reports_refused_topics() {
    let venue = FakeVenue::start(option_venue()).await;
    let preset = wsrec::net::venue::find("bybit-option").unwrap();
    let (recs, snap) = record_for(
        &format!(
            "venue = \"bybit-option\"\nurl = \"{}\"\nchannels = {:?}\nsymbols = [\"BTC-27DEC26-100000-C\", \"BTC-27DEC26-90000-P\"]\ntopics = [\"orderbook.50.BTC-27DEC26-100000-C\"]",
            venue.url("/v5/public/option"),
            preset.channels
        ),
        Duration::from_secs(45 * 60),
    )
    .await;
    venue.assert_never_closed("bybit-option");
    assert_eq!(venue.connections(), 1);
    let texts = venue.texts(1);
    let pings = texts.iter().filter(|t| *t == r#"{"op":"ping"}"#).count();
    assert!((130..=136).contains(&pings), "{pings} pings in 45 min");
    // Trades are asked for once per base coin, the rest per option symbol.
    let asked: Vec<String> = texts
        .iter()
        .filter(|t| t.contains("subscribe"))
        .flat_map(|t| strings(&parse(t)["args"]))
        .collect();
    assert_eq!(
        asked
            .iter()
            .filter(|t| t.starts_with("publicTrade."))
            .count(),
        1
    );
    assert!(asked.contains(&"publicTrade.BTC".to_owned()), "{asked:?}");
    assert_eq!(asked.len(), 8);
    // Depth 50 is no option depth: refused by name, the rest delivers.
    let rejected = events(&recs, "subscription_rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(
        rejected[0]["topics"],
        json!(["orderbook.50.BTC-27DEC26-100000-C"])
    );
    assert_eq!(snap.streams[0].subscriptions_failed, 1);
    assert!(events(&recs, "subscription_silent").is_empty());
    let delivered: BTreeSet<String> = recs
        .iter()
        .filter_map(|r| Some(r.get("msg")?.get("topic")?.as_str()?.to_owned()))
        .collect();
    assert_eq!(delivered.len(), 7, "{delivered:?}");
    assert_eq!(reasons(&recs), ["shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn bybit_option_shards_reconnecting_after_every_blip_stay_inside_bybits_connection_budget() {
    // Options draw on stream.bybit.com's budget (500 connections per 5 minutes per IP) like the
    // other Bybit markets; 100 option shards dropped every 30 s would make about 1,000.
    let (addr, accepts) = blip_venue(Duration::from_secs(30)).await;
    let topics: Vec<String> = (0..100)
        .map(|i| format!("\"tickers.BTC-27DEC26-{}-C\"", 50_000 + 1000 * i))
        .collect();
    record_for(
        &format!(
            "venue = \"bybit-option\"\nurl = \"ws://{addr}/v5/public/option\"\nmax_topics_per_connection = 1\ntopics = [{}]",
            topics.join(", ")
        ),
        Duration::from_secs(400),
    )
    .await;
    let at = accepts.lock().unwrap().clone();
    let busiest = busiest_window(&at, Duration::from_secs(300));
    assert!(
        busiest <= 500,
        "{busiest} connection attempts within 5 minutes: over Bybit's limit of 500"
    );
    assert!(busiest >= 300, "the storm was real: {busiest}");
}

/// Real-shaped frames of Binance COIN-M, one per listed channel of `btcusd_perp`: the event
/// payloads of the COIN-M stream pages
/// (https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams),
/// wrapped as combined streams wrap them.
const COINM_FRAMES: &[(&str, &str)] = &[
    (
        "btcusd_perp@aggTrade",
        r#"{"stream":"btcusd_perp@aggTrade","data":{"e":"aggTrade","E":1786310819681,"a":416690347,"s":"BTCUSD_PERP","p":"65114.2","q":"3","f":721237283,"l":721237284,"T":1786310819680,"m":true}}"#,
    ),
    (
        "btcusd_perp@markPrice@1s",
        r#"{"stream":"btcusd_perp@markPrice@1s","data":{"e":"markPriceUpdate","E":1786310819000,"s":"BTCUSD_PERP","p":"65120.81","P":"65121.30","i":"65119.42","r":"0.00010000","T":1786320000000}}"#,
    ),
    (
        "btcusd_perp@bookTicker",
        r#"{"stream":"btcusd_perp@bookTicker","data":{"e":"bookTicker","u":1031470813373,"s":"BTCUSD_PERP","ps":"BTCUSD","b":"65114.2","B":"120","a":"65114.3","A":"45","T":1786310819679,"E":1786310819681}}"#,
    ),
    (
        "btcusd_perp@depth@100ms",
        r#"{"stream":"btcusd_perp@depth@100ms","data":{"e":"depthUpdate","E":1786310819681,"T":1786310819679,"s":"BTCUSD_PERP","ps":"BTCUSD","U":1031470813370,"u":1031470813373,"pu":1031470813369,"b":[["65114.2","120"]],"a":[["65114.3","45"]]}}"#,
    ),
    (
        "btcusd_perp@depth20@100ms",
        r#"{"stream":"btcusd_perp@depth20@100ms","data":{"e":"depthUpdate","E":1786310819681,"T":1786310819679,"s":"BTCUSD_PERP","ps":"BTCUSD","U":1031470813370,"u":1031470813373,"pu":1031470813369,"b":[["65114.2","120"],["65114.1","8"]],"a":[["65114.3","45"],["65114.4","11"]]}}"#,
    ),
    (
        "btcusd_perp@kline_1m",
        r#"{"stream":"btcusd_perp@kline_1m","data":{"e":"kline","E":1786310819681,"s":"BTCUSD_PERP","k":{"t":1786310760000,"T":1786310819999,"s":"BTCUSD_PERP","i":"1m","f":721237100,"L":721237284,"o":"65120.0","c":"65114.2","h":"65125.0","l":"65110.1","v":"812","n":185,"x":false,"q":"1.24696520","V":"401","Q":"0.61583640","B":"0"}}}"#,
    ),
    (
        "btcusd_perp@forceOrder",
        r#"{"stream":"btcusd_perp@forceOrder","data":{"e":"forceOrder","E":1786310819681,"o":{"s":"BTCUSD_PERP","ps":"BTCUSD","S":"SELL","o":"LIMIT","f":"IOC","q":"1","p":"64800.1","ap":"64850.0","X":"FILLED","l":"1","z":"1","T":1786310819680}}}"#,
    ),
    (
        "btcusd_perp@ticker",
        r#"{"stream":"btcusd_perp@ticker","data":{"e":"24hrTicker","E":1786310819681,"s":"BTCUSD_PERP","ps":"BTCUSD","p":"106.2","P":"0.163","w":"65080.31","c":"65114.2","Q":"3","o":"65008.0","h":"65400.0","l":"64700.5","v":"1830211","q":"2812.26","O":1786224419681,"C":1786310819681,"F":721100000,"L":721237284,"n":137285}}"#,
    ),
];

/// Real-shaped frames of Bybit's option stream for `BTC-27DEC26-100000-C` (trades of its base
/// coin): the examples of https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook,
/// …/ticker and …/trade (option fields `mP`, `iP`, `mIv`, `iv`).
const OPTION_FRAMES: &[(&str, &str)] = &[
    (
        "publicTrade.BTC",
        r#"{"id":"publicTrade.BTC-1786310819681-1","topic":"publicTrade.BTC","ts":1786310819681,"data":[{"p":"2030","v":"0.01","i":"6fc1d1e5-ccd2-5c0e-a5a7-5e22ec4b4c12","T":1786310819680,"BT":false,"RPI":false,"s":"BTC-27DEC26-100000-C","S":"Sell","mP":"2002.3","iP":"65119.4","mIv":"0.4","iv":"0.43","seq":17}],"type":"snapshot"}"#,
    ),
    (
        "orderbook.25.BTC-27DEC26-100000-C",
        r#"{"topic":"orderbook.25.BTC-27DEC26-100000-C","type":"snapshot","ts":1786310819681,"data":{"s":"BTC-27DEC26-100000-C","b":[["1995","2.5"]],"a":[["2010","1.1"]],"u":80117,"seq":2364741},"cts":1786310819679}"#,
    ),
    (
        "orderbook.100.BTC-27DEC26-100000-C",
        r#"{"topic":"orderbook.100.BTC-27DEC26-100000-C","type":"snapshot","ts":1786310819681,"data":{"s":"BTC-27DEC26-100000-C","b":[["1995","2.5"],["1990","4"]],"a":[["2010","1.1"],["2015","3.2"]],"u":80117,"seq":2364741},"cts":1786310819679}"#,
    ),
    (
        "tickers.BTC-27DEC26-100000-C",
        r#"{"id":"tickers.BTC-27DEC26-100000-C-2480334983-1786310819681","topic":"tickers.BTC-27DEC26-100000-C","ts":1786310819681,"data":{"symbol":"BTC-27DEC26-100000-C","bidPrice":"1995","bidSize":"2.5","bidIv":"0.4102","askPrice":"2010","askSize":"1.1","askIv":"0.4131","lastPrice":"2030","highPrice24h":"2100","lowPrice24h":"1950","markPrice":"2002.3","indexPrice":"65119.4","markPriceIv":"0.4117","underlyingPrice":"65180.2","openInterest":"49.85","turnover24h":"446802.8473","volume24h":"26.55","totalVolume":"86","totalTurnover":"1437431","delta":"0.047831","gamma":"0.00021453","vega":"0.81351067","theta":"-19.9115368","predictedDeliveryPrice":"0","change24h":"-0.0333"},"type":"snapshot"}"#,
    ),
];

/// The frame of `topic` in `frames`.
fn frame_in(frames: &[(&str, &str)], topic: &str) -> Option<String> {
    frames
        .iter()
        .find(|(t, _)| *t == topic)
        .map(|(_, f)| (*f).to_owned())
}

/// COIN-M's answer for the liveness test: the ack, then each stream's frame.
fn coinm_live_answer(t: &str, _: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    if v["method"] != "SUBSCRIBE" {
        return Vec::new();
    }
    let mut out = vec![json!({"result": null, "id": v["id"]}).to_string()];
    out.extend(
        strings(&v["params"])
            .iter()
            .filter_map(|s| frame_in(COINM_FRAMES, s)),
    );
    out
}

/// The option stream's answer for the liveness test: its `COMMAND_RESP`, then each topic's frame.
fn option_live_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let mut out = option_answer(t, st);
    if parse(t)["op"] == "subscribe" {
        out.extend(
            strings(&parse(t)["args"])
                .iter()
                .filter_map(|s| frame_in(OPTION_FRAMES, s)),
        );
    }
    out
}

/// The fakes of this module's presets for
/// [`super::every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    match preset {
        "binance-coinm" => Some(Live {
            encode: text_frame,
            symbol: "BTCUSD_PERP",
            answer: coinm_live_answer,
            frame: |t| frame_in(COINM_FRAMES, t),
        }),
        "bybit-option" => Some(Live {
            encode: text_frame,
            symbol: "BTC-27DEC26-100000-C",
            answer: option_live_answer,
            frame: |t| frame_in(OPTION_FRAMES, t),
        }),
        _ => None,
    }
}
