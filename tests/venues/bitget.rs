//! Bitget v2 public (`bitget`) against a fake Bitget that keeps Bitget's rules
//! (https://www.bitget.com/api-doc/common/websocket-intro): it closes a connection that sent no
//! string `ping` for 2 minutes, one that sends more than 10 messages in a second (pings
//! included), and every connection after 24 hours; it refuses arguments naming an unknown
//! instType, channel or instrument, one by one; and the process must stay inside its
//! 300 connects per 5 minutes per IP.
//!
//! Frames are of Bitget's real shape, as its v2 channel pages show them
//! (https://www.bitget.com/api-doc/spot/websocket/public/Trades-Channel and its neighbours).

use super::*;

const INST_TYPES: &[&str] = &["SPOT", "USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"];

/// Whether Bitget serves this channel on its public endpoint.
fn known_channel(c: &str) -> bool {
    matches!(
        c,
        "trade" | "ticker" | "books" | "books1" | "books5" | "books15"
    ) || c.strip_prefix("candle").is_some_and(|i| {
        [
            "1m", "5m", "15m", "30m", "1H", "4H", "6H", "12H", "1D", "1W",
        ]
        .contains(&i)
    })
}

/// One data frame of Bitget's real shape for `arg`, numbered `n` (a field of the test's own,
/// for the tick count; candles, arrays, carry none).
fn bitget_frame(inst_type: &str, channel: &str, inst_id: &str, n: u64) -> String {
    let arg = json!({"instType": inst_type, "channel": channel, "instId": inst_id});
    let (action, data) = match channel {
        "trade" => (
            "update",
            json!([{"ts": "1695709835822", "price": "26293.4", "size": "0.0013", "side": "buy", "tradeId": format!("{}", 1106286315521622017u64 + n), "n": n}]),
        ),
        "ticker" => (
            "snapshot",
            json!([{"instId": inst_id, "lastPr": "27000.5", "bidPr": "27000", "askPr": "27000.5", "bidSz": "2.71", "askSz": "8.76", "open24h": "27000.5", "high24h": "30668.5", "low24h": "26999.0", "change24h": "-0.00002", "fundingRate": "0.000010", "nextFundingTime": "1695722400000", "markPrice": "27000.0", "indexPrice": "25702.4", "holdingAmount": "929.502", "baseVolume": "368.900", "quoteVolume": "10152429.961", "openUtc": "27000.5", "symbolType": 1, "symbol": inst_id, "deliveryPrice": "0", "ts": "1695715383021", "n": n}]),
        ),
        c if c.starts_with("candle") => (
            "update",
            json!([[
                "1695685500000",
                "27000",
                "27000.5",
                "27000",
                "27000.5",
                "0.057",
                "1539.0155",
                "1539.0155"
            ]]),
        ),
        _ => (
            "snapshot",
            json!([{"asks": [["27000.5", "8.760"]], "bids": [["27000.0", "2.710"]], "checksum": -1281283372, "seq": 123 + n, "ts": "1695716059516", "n": n}]),
        ),
    };
    json!({"action": action, "arg": arg, "data": data, "ts": 1695716059516u64}).to_string()
}

/// The fake Bitget's answer to one client text: `pong`, or per argument an ack and the
/// channel's first frame, or an error.
fn answer(t: &str, st: &mut ConnState) -> Vec<String> {
    if t == "ping" {
        return vec!["pong".to_owned()];
    }
    let v = parse(t);
    if v["op"] != "subscribe" {
        return Vec::new();
    }
    let mut out = Vec::new();
    for a in v["args"].as_array().into_iter().flatten() {
        let (t, c, i) = (
            a["instType"].as_str().unwrap_or(""),
            a["channel"].as_str().unwrap_or(""),
            a["instId"].as_str().unwrap_or(""),
        );
        if INST_TYPES.contains(&t) && known_channel(c) && !i.is_empty() && !i.contains("NOPE") {
            // The ack, then at once the channel's snapshot (tick 0).
            out.push(json!({"event": "subscribe", "arg": a}).to_string());
            out.push(bitget_frame(t, c, i, 0));
            st.streams.push(format!("{t}|{c}|{i}"));
            st.subscribed = true;
        } else {
            out.push(json!({"event": "error", "arg": a, "code": 30001, "msg": format!("instType:{t},channel:{c},instId:{i} doesn't exist"), "op": "subscribe"}).to_string());
        }
    }
    out
}

fn bitget_venue() -> Venue {
    Venue {
        answer,
        // Only the string ping counts; Bitget cuts after 2 minutes without one.
        keeps_alive: |i| matches!(i, Incoming::Text(t) if t == "ping"),
        idle_limit: Some(Duration::from_secs(120)),
        max_per_sec: Some(10),
        lifetime: Some(Duration::from_secs(24 * 3600)),
        data: |n, st| {
            st.streams
                .iter()
                .map(|s| {
                    let mut p = s.split('|');
                    let (t, c, i) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
                    bitget_frame(t, c, i, n)
                })
                .collect()
        },
        data_every: Duration::from_secs(300),
        ..quiet_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn bitget_spreads_topics_pings_and_replaces_connections_before_the_daily_cut() {
    let venue = FakeVenue::start(bitget_venue()).await;
    // 54 topics and one Bitget does not know: 50 per connection, each in one message.
    let mut topics: Vec<String> = (0..27)
        .flat_map(|i| {
            [
                format!("\"SPOT/trade:S{i:02}USDT\""),
                format!("\"USDT-FUTURES/books5:S{i:02}USDT\""),
            ]
        })
        .collect();
    topics.push("\"SPOT/trade:NOPEUSDT\"".to_owned());
    let (recs, snap) = record_for(
        &format!(
            "venue = \"bitget\"\nurl = \"{}\"\ntopics = [{}]",
            venue.url("/v2/ws/public"),
            topics.join(", ")
        ),
        Duration::from_secs(24 * 3600 + 1200),
    )
    .await;
    venue.assert_never_closed("bitget");
    // Two shards, each replaced once before Bitget's 24 h cut, make-before-break.
    assert_eq!(venue.connections(), 4);
    let connected = events(&recs, "connected");
    assert_eq!(connected.len(), 4);
    let at = |e: &Value| (e["ts"].as_u64().unwrap() - BASE_NS) / 1_000_000_000;
    for e in &connected[2..] {
        assert!(e["replaces"].is_u64(), "{e}");
        let t = at(e);
        assert!(
            (23 * 3600 + 1800..24 * 3600).contains(&t),
            "replaced at {t} s"
        );
    }
    for c in 1..=4 {
        let texts = venue.texts(c);
        let subs: Vec<Value> = texts
            .iter()
            .filter(|t| t.contains(r#""op":"subscribe""#))
            .map(|t| parse(t))
            .collect();
        // One subscribe request per connection (Bitget counts 240 per hour), at most 50
        // arguments: Bitget's recommended most per connection.
        assert_eq!(subs.len(), 1, "connection {c}");
        assert!(subs[0]["args"].as_array().unwrap().len() <= 50);
        // A string ping every 30 s: the first connections lived 23 h 30 min, their
        // replacements 50 min.
        let pings = texts.iter().filter(|t| *t == "ping").count();
        let least = if c <= 2 { 2 * (23 * 60 + 29) } else { 2 * 45 };
        assert!(pings >= least, "connection {c}: {pings} pings");
    }
    // The unknown instrument alone is refused, by name.
    let rejected = events(&recs, "subscription_rejected");
    let refused: BTreeSet<String> = rejected
        .iter()
        .flat_map(|e| strings(&e["topics"]))
        .collect();
    assert_eq!(refused, BTreeSet::from(["SPOT/trade:NOPEUSDT".to_owned()]));
    assert!(rejected[0]["reason"].as_str().unwrap().contains("30001"));
    assert_eq!(snap.streams[0].subscriptions_failed, 1);
    assert!(events(&recs, "subscription_silent").is_empty());
    // Every 5 minutes of the day are in the recording.
    assert_contiguous(&ticks(&recs), 24 * 12);
    assert_eq!(
        reasons(&recs).iter().filter(|r| *r == "replaced").count(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn bitget_subscribes_a_large_list_without_passing_ten_messages_a_second() {
    let venue = FakeVenue::start(bitget_venue()).await;
    // 200 topics: four connections, their subscribe messages at most 5 a second.
    let topics: Vec<String> = (0..200)
        .map(|i| format!("\"USDT-FUTURES/books:S{i:03}USDT\""))
        .collect();
    // A fine clock step, so that the fake sees each message at its own time.
    let (recs, snap) = record_stepped(
        &format!(
            "venue = \"bitget\"\nurl = \"{}\"\ntopics = [{}]",
            venue.url("/v2/ws/public"),
            topics.join(", ")
        ),
        Duration::from_secs(20),
        Duration::from_millis(10),
    )
    .await;
    venue.assert_never_closed("bitget");
    assert_eq!(venue.connections(), 4);
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    assert!(events(&recs, "subscription_rejected").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_hundred_bitget_shards_reconnecting_after_every_blip_stay_inside_the_connection_budget() {
    // Bitget allows 300 connection requests per 5 minutes per IP; the preset's 500 ms spacing
    // alone would let 100 shards, dropped every 30 s, make about 1,000.
    let topics: Vec<String> = (0..100)
        .map(|i| format!("SPOT/trade:S{i:03}USDT"))
        .collect();
    let (at, recs) = blip_storm("bitget", "/v2/ws/public", &topics).await;
    let busiest = busiest_window(&at, Duration::from_secs(300));
    assert!(
        busiest <= 300,
        "{busiest} connection attempts within 5 minutes: over Bitget's limit of 300"
    );
    // wsrec's share is 240; the storm was real.
    assert!(busiest >= 180, "{busiest}");
    let held = long_budget_waits(&recs);
    assert!(held >= 20, "{held} connects recorded a long budget wait");
}

/// Bitget's fake for [`super::every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "bitget").then_some(Live {
        encode: text_frame,
        symbol: "BTCUSDT",
        answer,
        frame: |topic| {
            let (t, rest) = topic.split_once('/')?;
            let (c, i) = rest.split_once(':')?;
            Some(bitget_frame(t, c, i, 0))
        },
    })
}

#[tokio::test]
async fn bitget_is_dialled_at_its_public_v2_address() {
    let pki = tempfile::tempdir().unwrap();
    let door = FakeVenue::front_door(bitget_venue(), "ws.bitget.com", pki.path()).await;
    let recs = record_through(&door, "bitget", "[\"SPOT/trade:BTCUSDT\"]", 2).await;
    assert!(
        door.connects().iter().all(|c| c == "ws.bitget.com:443"),
        "{:?}",
        door.connects()
    );
    assert!(
        door.targets().iter().all(|t| t == "/v2/ws/public"),
        "{:?}",
        door.targets()
    );
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert!(recs.iter().any(|r| {
        r.get("msg")
            .is_some_and(|m| m["arg"]["instId"] == "BTCUSDT" && m.get("data").is_some())
    }));
}
