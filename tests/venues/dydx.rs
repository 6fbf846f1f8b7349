//! dYdX v4 (the `dydx` preset) against a fake of its indexer's WebSocket (the socks service):
//! a `connected` message first, a protocol ping every 30 s and the connection cut when the
//! pong is 10 s late, at most 32 subscriptions per channel per connection (an error beyond),
//! a connection closed (1008) when a channel and id is subscribed again within a second, and
//! an error naming `(channel-id)` for an unknown market.
//!
//! Sources: https://docs.dydx.exchange/api_integration-indexer/indexer_websocket, dydxprotocol/
//! v4-chain `indexer/services/socks/src` (`config.ts`: limits and heartbeat; `helpers/message.ts`:
//! message shapes; `lib/subscription.ts`: errors).

use super::*;

/// The subscribed answer and its initial contents, as the socks service writes them.
fn subscribed(channel: &str, id: Option<&str>, contents: &Value) -> String {
    let mut m = json!({"type":"subscribed","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":1,"channel":channel});
    if let Some(id) = id {
        m["id"] = json!(id);
    }
    m["contents"] = contents.clone();
    m.to_string()
}

fn error(words: &str) -> String {
    json!({"type":"error","message":words,"connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":1}).to_string()
}

/// The indexer's answers: an ack with initial contents for a valid subscription within the
/// per-channel limit, errors otherwise. Topics are kept in `st.streams` as `channel:id`.
fn dydx_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    if v["type"] != "subscribe" {
        return vec![error(&format!("Invalid message: {t}"))];
    }
    let channel = v["channel"].as_str().unwrap_or("");
    let id = v["id"].as_str();
    if id.is_some_and(|i| i.starts_with("FOO")) {
        return vec![error(&format!(
            "Invalid subscription id for channel: ({channel}-{})",
            id.unwrap()
        ))];
    }
    let topic = id.map_or(channel.to_owned(), |i| format!("{channel}:{i}"));
    let on_channel = st
        .streams
        .iter()
        .filter(|s| s.split(':').next() == Some(channel))
        .count();
    if on_channel >= 32 {
        return vec![error(&format!(
            "Subscription limit reached for channel {channel} (32 per connection)"
        ))];
    }
    if st.streams.contains(&topic) {
        return vec![error(&format!(
            "Invalid subscribe message: already subscribed ({channel}-{})",
            id.unwrap_or("")
        ))];
    }
    st.streams.push(topic);
    st.subscribed = true;
    vec![subscribed(channel, id, &json!({"trades": []}))]
}

/// A trade on every subscribed market and an oracle price update for `v4_markets`, numbered
/// by the venue tick (`n`), shaped as the indexer's channel_data.
fn trades(n: u64, st: &ConnState) -> Vec<String> {
    st.streams
        .iter()
        .map(|t| match t.strip_prefix("v4_trades:") {
            Some(market) => json!({"type":"channel_data","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":n,"id":market,"channel":"v4_trades","version":"2.1.0","contents":{"trades":[{"id":format!("{n:024x}"),"size":"0.001","price":"97480","side":"BUY","createdAt":"2024-12-05T13:00:01.563Z","type":"LIMIT","n":n}]}}).to_string(),
            None => json!({"type":"channel_data","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":n,"channel":"v4_markets","version":"1.0.0","contents":{"oraclePrices":{"BTC-USD":{"oraclePrice":"97452.1","effectiveAt":"2024-12-05T13:00:01.000Z","effectiveAtHeight":"25000000","marketId":0,"n":n}}}}).to_string(),
        })
        .collect()
}

fn dydx_venue() -> Venue {
    Venue {
        opened: |_, _| {
            vec![json!({"type":"connected","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":0}).to_string()]
        },
        answer: dydx_answer,
        // The indexer pings every 30 s and wants the pong within 10 s.
        server_ping: Some((Duration::from_secs(30), Duration::from_secs(30))),
        keeps_alive: |i| matches!(i, Incoming::Pong),
        idle_limit: Some(Duration::from_secs(40)),
        data: trades,
        data_every: Duration::from_secs(5),
        // Subscribing to one channel and id twice within a second is closed with 1008; more
        // than 2 invalid messages per second too: at most 2 messages per second is safe.
        max_per_sec: Some(20),
        ..quiet_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn dydx_answers_the_indexers_pings_and_splits_topics_32_per_channel_per_connection() {
    let venue = FakeVenue::start(dydx_venue()).await;
    let markets: Vec<String> = (0..40).map(|i| format!("\"M{i:02}-USD\"")).collect();
    let (recs, snap) = record_for(
        &format!(
            "venue = \"dydx\"\nurl = \"{}\"\nchannels = [\"v4_trades\", \"v4_markets\"]\nsymbols = [{}]",
            venue.url("/v4/ws"),
            markets.join(", ")
        ),
        Duration::from_secs(3600),
    )
    .await;
    // No connection cut for a late pong, none over the per-channel limit.
    venue.assert_never_closed("dydx");
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert!(events(&recs, "subscription_silent").is_empty());
    assert_eq!(snap.streams[0].subscriptions_failed, 0);
    assert_eq!(venue.connections(), 2);
    let first = venue.texts(1);
    assert_eq!(first.len(), 32);
    assert_eq!(
        first[0],
        r#"{"type":"subscribe","channel":"v4_trades","id":"M00-USD"}"#
    );
    // The market-wide channel once, without an id.
    let second = venue.texts(2);
    assert_eq!(second.len(), 9);
    assert_eq!(second[8], r#"{"type":"subscribe","channel":"v4_markets"}"#);
    // Every 30 s ping of the indexer answered, on both connections, for the hour.
    let pongs = venue.seen().iter().filter(|s| s.what == "pong").count();
    assert!(pongs >= 2 * 110, "{pongs} pongs");
    // Every market's trades, complete.
    let recorded: BTreeSet<&str> = recs
        .iter()
        .filter_map(|r| r.get("msg")?.get("id")?.as_str())
        .collect();
    assert_eq!(recorded.len(), 40);
    assert_contiguous(&ticks(&recs), 700);
}

#[tokio::test(start_paused = true)]
async fn dydx_refused_market_is_reported_by_its_topic_and_the_rest_goes_on() {
    let venue = FakeVenue::start(dydx_venue()).await;
    let (recs, snap) = record_preset(
        "dydx",
        &venue,
        "/v4/ws",
        r#"["v4_trades:BTC-USD", "v4_trades:FOO-USD"]"#,
        Duration::from_secs(60),
    )
    .await;
    let rejected = events(&recs, "subscription_rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["topics"], json!(["v4_trades:FOO-USD"]));
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("(v4_trades-FOO-USD)")
    );
    assert_eq!(snap.streams[0].subscriptions_failed, 1);
    assert_eq!(venue.connections(), 1);
    assert_contiguous(&ticks(&recs), 10);
}

/// One data frame of the real shape per listed channel (socks `helpers/message.ts`; contents
/// as the indexer docs show them).
fn dydx_frame(topic: &str) -> Option<String> {
    let (channel, id) = match topic.split_once(':') {
        Some((c, i)) => (c, Some(i)),
        None => (topic, None),
    };
    let contents = match channel {
        "v4_trades" => {
            json!({"trades":[{"id":"02a7c2e70000000200000002","size":"0.0012","price":"97480","side":"BUY","createdAt":"2024-12-05T13:00:01.563Z","type":"LIMIT"}]})
        }
        "v4_orderbook" => json!({"bids":[["97450","0.5"]],"asks":[["97460","0"]]}),
        "v4_candles" => {
            json!({"resolution":"1MIN","id":"BTC-USD","ticker":"BTC-USD","low":"97400","high":"97500","open":"97450","close":"97480","baseTokenVolume":"1.2","usdVolume":"116976","trades":12,"startingOpenInterest":"560.1","startedAt":"2024-12-05T13:00:00.000Z"})
        }
        "v4_markets" => {
            json!({"oraclePrices":{"BTC-USD":{"oraclePrice":"97452.1","effectiveAt":"2024-12-05T13:00:01.000Z","effectiveAtHeight":"25000000","marketId":0}}})
        }
        "v4_block_height" => json!({"blockHeight":"25000001","time":"2024-12-05T13:00:02.000Z"}),
        _ => return None,
    };
    let mut m = json!({"type":"channel_data","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":2});
    // The socks service leaves the id out for v4_markets only.
    if channel != "v4_markets" {
        m["id"] = json!(id.unwrap_or("v4_block_height"));
    }
    m["channel"] = json!(channel);
    m["version"] = json!("1.0.0");
    m["contents"] = contents;
    Some(m.to_string())
}

/// The liveness fake's answer: the ack, then one update of the subscribed topic.
fn live_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    with_frames(dydx_answer, dydx_frame, t, st)
}

/// The dYdX preset's fake for the liveness test.
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "dydx").then_some(Live {
        encode: text_frame,
        symbol: "BTC-USD",
        answer: live_answer,
        frame: dydx_frame,
    })
}
