//! Coinbase Exchange's classic feed against a fake that keeps its rules: a subscription must
//! come within 5 s of connecting (checked on the fake's log), channels are subscribed with
//! product lists and acknowledged with every channel subscribed so far, unknown products are
//! refused with `{"type":"error","message":"Failed to subscribe","reason":"X is not a valid
//! product"}`, the `heartbeat` channel ticks once a second per product that asked for it, data
//! comes as `type` messages naming `product_id` (`match`, `ticker`, `snapshot`/`l2update`), and
//! `status` lists every product (https://docs.cdp.coinbase.com/exchange/websocket-feed and
//! …/channels). Frames are the corpus's (tests/fixtures/corpus/coinbase-exchange_*.jsonl,
//! ws-feed 2021) with the product renamed, the heartbeat and status ones the channels page's.

use super::*;

const MATCH: &str = r#"{"type":"match","trade_id":280232,"maker_order_id":"2a0da34e-61f7-4c36-88e5-c9dd15927b16","taker_order_id":"3c82abaa-c01e-4608-be59-6a1e69742891","side":"sell","size":"985","price":"0.00001305","product_id":"SKL-BTC","sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}"#;
const TICKER: &str = r#"{"type":"ticker","sequence":333938798,"product_id":"SKL-BTC","price":"14.7775","open_24h":"14.6647","volume_24h":"94381.28000000","low_24h":"14.3691","high_24h":"16.55","volume_30d":"2295579.57000000","best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z","trade_id":881613,"last_size":"0.04"}"#;
/// The corpus's first snapshot, cut to two levels a side.
const SNAPSHOT: &str = r#"{"type":"snapshot","product_id":"SKL-BTC","asks":[["14.8024","12.77"],["14.8069","12.49"]],"bids":[["14.7550","1.20"],["14.7501","30.00"]]}"#;
const L2UPDATE: &str = r#"{"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],"time":"2021-04-17T16:43:37.075687Z"}"#;
const HEARTBEAT: &str = r#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"SKL-BTC","time":"2014-11-07T08:19:28.464459Z"}"#;
/// Every product in each message (here two).
const STATUS: &str = r#"{"type":"status","products":[{"id":"BTC-USD","base_currency":"BTC","quote_currency":"USD","base_increment":"0.00000001","quote_increment":"0.01","display_name":"BTC-USD","status":"online","status_message":null,"min_market_funds":"10","post_only":false,"limit_only":false,"cancel_only":false,"fx_stablecoin":false},{"id":"ETH-USD","base_currency":"ETH","quote_currency":"USD","base_increment":"0.00000001","quote_increment":"0.01","display_name":"ETH-USD","status":"online","status_message":null,"min_market_funds":"10","post_only":false,"limit_only":false,"cancel_only":false,"fx_stablecoin":false}],"currencies":[{"id":"USD","name":"United States Dollar","min_size":"0.01000000","status":"online","status_message":null,"max_precision":"0.01","convertible_to":["USDC"],"details":{}}]}"#;

/// The first message a channel sends for a product (`status` lists its products itself).
fn first_frame(channel: &str, product: &str) -> Option<String> {
    let frame = match channel {
        "matches" => MATCH,
        "ticker" | "ticker_batch" => TICKER,
        "level2_batch" => SNAPSHOT,
        "heartbeat" => HEARTBEAT,
        "status" => return Some(STATUS.to_owned()),
        _ => return None,
    };
    Some(frame.replace("SKL-BTC", product))
}

/// Coinbase Exchange's answer to a subscribe message: an error if a product is unknown (a
/// product here is `BASE-QUOTE` of capitals, `FOO` bases excepted), else the subscriptions so
/// far and each new channel's first message per product.
fn answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    if v["type"] != "subscribe" {
        return Vec::new();
    }
    let channels = strings(&v["channels"]);
    let products = strings(&v["product_ids"]);
    if let Some(bad) = products.iter().find(|p| p.ends_with("-FOO")) {
        return vec![json!({"type":"error","message":"Failed to subscribe","reason":format!("{bad} is not a valid product")}).to_string()];
    }
    let mut out = Vec::new();
    for c in &channels {
        let of = if c == "status" {
            vec![String::new()]
        } else {
            products.clone()
        };
        for p in of {
            if c == "heartbeat" {
                st.heartbeats = true;
            }
            out.extend(first_frame(c, &p));
            st.streams.push(format!("{c}:{p}"));
        }
    }
    st.subscribed = true;
    // The subscriptions message lists every channel with its products, so far.
    let mut listed: Vec<(String, Vec<String>)> = Vec::new();
    for s in &st.streams {
        let (c, p) = s.split_once(':').unwrap();
        match listed.iter_mut().find(|(n, _)| n == c) {
            Some((_, ps)) if !p.is_empty() => ps.push(p.to_owned()),
            Some(_) => {}
            None => listed.push((
                c.to_owned(),
                [p.to_owned()]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
        }
    }
    let listed: Vec<Value> = listed
        .into_iter()
        .map(|(name, ps)| json!({"name": name, "product_ids": ps}))
        .collect();
    out.insert(
        0,
        json!({"type":"subscriptions","channels":listed}).to_string(),
    );
    out
}

/// Coinbase Exchange with quiet products: a match and a book update every 2 minutes (past the
/// preset's 30 s silence rule), heartbeats once a second for the products that asked.
fn venue() -> Venue {
    Venue {
        answer,
        heartbeat: Some((Duration::from_secs(1), |st| {
            st.streams
                .iter()
                .filter_map(|s| s.strip_prefix("heartbeat:"))
                .map(|p| HEARTBEAT.replace("SKL-BTC", p))
                .collect()
        })),
        data: |n, st| {
            let mut out = Vec::new();
            for s in &st.streams {
                let (c, p) = s.split_once(':').unwrap();
                let frame = match c {
                    "matches" => MATCH,
                    "level2_batch" => L2UPDATE,
                    _ => continue,
                };
                let numbered = frame.replacen('{', &format!(r#"{{"n":{n},"#), 1);
                out.push(numbered.replace("SKL-BTC", p));
            }
            out
        },
        data_every: Duration::from_secs(120),
        ..quiet_venue()
    }
}

/// When each connection sent its first text (a subscribe), after it opened.
fn subscribe_delays(venue: &FakeVenue) -> Vec<Duration> {
    let seen = venue.seen();
    (1..=venue.connections())
        .filter_map(|c| {
            let open = seen.iter().find(|s| s.conn == c && s.what == "open")?.at;
            let first = seen
                .iter()
                .find(|s| s.conn == c && s.what.starts_with("text "))?
                .at;
            Some(first - open)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn coinbase_exchange_quiet_products_live_on_heartbeats_and_refusals_are_named() {
    let venue = FakeVenue::start(venue()).await;
    // BTC-FOO last, so the other products of its channel come first in the same message.
    let (recs, snap) = record_for(
        &format!(
            "venue = \"coinbase-exchange\"\nurl = \"{}\"\ntopics = [\"matches:BTC-USD\", \"matches:ETH-USD\", \"level2_batch:BTC-USD\", \"ticker_batch:ETH-USD\", \"status:BTC-USD\", \"matches:BTC-FOO\"]",
            venue.url("/")
        ),
        Duration::from_secs(15 * 60),
    )
    .await;
    venue.assert_never_closed("coinbase-exchange");
    assert_eq!(venue.connections(), 1);
    // Quiet for 2 minutes at a time, far past the 30 s silence rule: heartbeats carry it.
    assert_eq!(reasons(&recs), ["shutdown"]);
    let texts = venue.texts(1);
    // Heartbeats a product a message: BTC-FOO's refusal leaves the others' alone.
    assert_eq!(
        texts[..3],
        [
            r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["heartbeat"]}"#,
            r#"{"type":"subscribe","product_ids":["ETH-USD"],"channels":["heartbeat"]}"#,
            r#"{"type":"subscribe","product_ids":["BTC-FOO"],"channels":["heartbeat"]}"#,
        ]
    );
    assert!(
        subscribe_delays(&venue)
            .iter()
            .all(|d| *d < Duration::from_secs(5))
    );
    // BTC-FOO is refused by name.
    let rejected = events(&recs, "subscription_rejected");
    let refused: BTreeSet<String> = rejected
        .iter()
        .flat_map(|e| strings(&e["topics"]))
        .collect();
    assert!(refused.contains("matches:BTC-FOO"), "{rejected:?}");
    assert!(!refused.contains("level2_batch:BTC-USD"), "{rejected:?}");
    // Coinbase refuses the whole message that names it: the other products of that message
    // stay silent, and are reported so, by name, once.
    let silent = events(&recs, "subscription_silent");
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(
        silent[0]["not_acknowledged"],
        json!(["matches:BTC-USD", "matches:ETH-USD"])
    );
    assert_eq!(snap.streams[0].subscriptions_failed, 3);
    // Snapshots, tickers, status and quiet matches are recorded as sent.
    let msgs = raw_msgs(&recs);
    assert!(
        msgs.iter()
            .any(|m| *m == SNAPSHOT.replace("SKL-BTC", "BTC-USD"))
    );
    assert!(msgs.iter().any(|m| m == STATUS));
    assert!(
        msgs.iter()
            .any(|m| *m == TICKER.replace("SKL-BTC", "ETH-USD"))
    );
    assert_contiguous(&ticks(&recs), 7);
}

#[tokio::test(start_paused = true)]
async fn coinbase_exchange_forty_connections_keep_to_eight_connects_and_a_hundred_messages_a_second()
 {
    let venue = FakeVenue::start(Venue {
        data_every: Duration::from_secs(1),
        ..venue()
    })
    .await;
    let topics: Vec<String> = (0..40)
        .flat_map(|i| {
            [
                format!("\"matches:C{i:02}-USD\""),
                format!("\"level2_batch:C{i:02}-USD\""),
            ]
        })
        .collect();
    let (recs, _) = record_stepped(
        &format!(
            "venue = \"coinbase-exchange\"\nurl = \"{}\"\nmax_topics_per_connection = 2\ntopics = [{}]",
            venue.url("/"),
            topics.join(", ")
        ),
        Duration::from_secs(30),
        Duration::from_millis(50),
    )
    .await;
    assert_eq!(venue.connections(), 40);
    let opens = venue.opens();
    let busiest = busiest_window(&opens, Duration::from_secs(1));
    assert!(
        busiest <= 8,
        "{busiest} connects within a second: over Coinbase's 8"
    );
    // Every client message counts, pings and pongs too.
    let seen = venue.seen();
    let sent: Vec<Duration> = seen
        .iter()
        .filter(|s| s.what.starts_with("text ") || s.what == "ping" || s.what == "pong")
        .map(|s| s.at)
        .collect();
    assert!(busiest_window(&sent, Duration::from_secs(1)) <= 100);
    let texts = seen.iter().filter(|s| s.what.starts_with("text ")).count();
    assert_eq!(texts, 40 * 3, "a heartbeat and two channel messages each");
    assert!(
        subscribe_delays(&venue)
            .iter()
            .all(|d| *d < Duration::from_secs(5))
    );
    let delivered: BTreeSet<String> = recs
        .iter()
        .filter_map(|r| Some(r.get("msg")?.get("product_id")?.as_str()?.to_owned()))
        .collect();
    assert_eq!(delivered.len(), 40);
    venue.assert_never_closed("coinbase-exchange");
}

/// The fake of coinbase-exchange for
/// [`super::every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "coinbase-exchange").then_some(Live {
        encode: text_frame,
        symbol: "BTC-USD",
        answer,
        frame: |topic| {
            let (channel, product) = topic.split_once(':')?;
            first_frame(channel, product)
        },
    })
}
