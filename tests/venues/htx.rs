//! HTX (Huobi) market data against a fake that keeps HTX's rules: every frame it sends is
//! gzip-compressed binary; it pings `{"ping":N}` every 5 s and closes a connection that has not
//! answered `{"pong":N}` with the same N within two ping periods (10 s); spot serves the
//! incremental book (`mbp.*`) on `/feed` only and the rest on `/ws` only.
//!
//! Sources: https://huobiapi.github.io/docs/spot/v1/en/ (heartbeat, sub/subbed, errors);
//! frame shapes as ccxt's `ts/src/pro/htx.ts` quotes them.

use std::io::{Read, Write};

use super::*;

/// The number of HTX's first ping in the fake (a millisecond timestamp, as HTX sends).
const PING_BASE: u64 = 1_492_420_473_027;

/// The bytes of `text` gzip-compressed, as HTX sends every frame.
fn gzip_bytes(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// A frame as HTX puts it on the wire: gzip in a binary frame.
fn gzip_frame(text: String) -> Message {
    Message::binary(gzip_bytes(&text))
}

/// The recorded messages with every binary one (`bin`, base64 gzip) inflated into `msg`, so
/// the rig's helpers ([`ticks`], [`raw_msgs`]) read them.
fn inflated(recs: &[Value]) -> Vec<Value> {
    recs.iter()
        .map(|r| {
            let Some(b64) = r.get("bin").and_then(Value::as_str) else {
                return r.clone();
            };
            let gz =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut text)
                .unwrap();
            let mut r = r.clone();
            r["msg"] = parse(&text);
            r
        })
        .collect()
}

/// A data frame of `ch` carrying tick number `n` (a trade of the shape ccxt quotes).
fn htx_trade(ch: &str, n: u64) -> String {
    format!(
        r#"{{"ch":"{ch}","ts":{n},"tick":{{"id":{n},"ts":{n},"data":[{{"id":{n},"ts":{n},"tradeId":{n},"amount":0.003893,"price":9150.01,"direction":"sell","n":{n}}}]}}}}"#
    )
}

/// HTX's answer to a client message: `sub` is acknowledged (or refused with HTX's error when
/// the topic is not served on this path); a `pong` with the number of the last ping clears it.
fn htx_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    if let Some(n) = v.get("pong") {
        if n.as_u64() == Some(PING_BASE + st.pings) {
            st.test_pending = None;
        }
        return Vec::new();
    }
    let (Some(topic), Some(id)) = (v["sub"].as_str(), v.get("id")) else {
        return vec![
            json!({"ts":1,"status":"error","err-code":"bad-request","err-msg":"invalid request"})
                .to_string(),
        ];
    };
    let mbp = topic.split('.').nth(2) == Some("mbp");
    let on_feed = st.target.ends_with("/feed");
    let spot = st.target.ends_with("/ws") || on_feed;
    if spot && mbp != on_feed {
        return vec![json!({"ts":1586323747018u64,"status":"error","err-code":"bad-request","err-msg":format!("invalid topic {topic}"),"id":id}).to_string()];
    }
    st.streams.push(topic.to_owned());
    st.subscribed = true;
    vec![json!({"id":id,"status":"ok","subbed":topic,"ts":1583414229143u64}).to_string()]
}

/// HTX's heartbeat: a ping with a number of its own every 5 s; the first unanswered one starts
/// the 10 s the client has.
fn htx_ping(st: &mut ConnState) -> Vec<String> {
    st.pings += 1;
    if st.test_pending.is_none() {
        st.test_pending = Some(Instant::now());
    }
    vec![json!({ "ping": PING_BASE + st.pings }).to_string()]
}

/// HTX with its heartbeat rule: one trade a second on every topic subscribed.
fn htx_venue() -> Venue {
    Venue {
        answer: htx_answer,
        heartbeat: Some((Duration::from_secs(5), htx_ping)),
        test_request_deadline: Some(Duration::from_secs(10)),
        data: |n, st| st.streams.iter().map(|ch| htx_trade(ch, n)).collect(),
        data_every: Duration::from_secs(1),
        encode: gzip_frame,
        ..quiet_venue()
    }
}

/// Records `topics` of `preset` from the fake's `path` for `minutes`: every ping answered at
/// once with its own number, nothing cut, every frame recorded as the binary it came as.
async fn htx_pings_answered(preset: &str, path: &str, topics: [&str; 2], minutes: u64) {
    let venue = FakeVenue::start(htx_venue()).await;
    let (recs, _) = record_preset(
        preset,
        &venue,
        path,
        &format!("[\"{}\", \"{}\"]", topics[0], topics[1]),
        Duration::from_secs(minutes * 60),
    )
    .await;
    venue.assert_never_closed(preset);
    assert_eq!(venue.connections(), 1);
    let texts = venue.texts(1);
    assert_eq!(
        texts[..2],
        [
            format!(r#"{{"sub":"{}","id":"1"}}"#, topics[0]),
            format!(r#"{{"sub":"{}","id":"2"}}"#, topics[1])
        ]
    );
    // Every ping answered, in order, with its own number.
    let pongs = &texts[2..];
    let pings = (minutes * 12) as usize;
    assert!(
        (pings - 5..=pings).contains(&pongs.len()),
        "{} pongs in {minutes} min",
        pongs.len()
    );
    for (i, p) in pongs.iter().enumerate() {
        assert_eq!(*p, format!(r#"{{"pong":{}}}"#, PING_BASE + 1 + i as u64));
    }
    // Every frame is recorded as the binary it came as: pings, acks and data, byte for byte.
    assert!(
        recs.iter()
            .all(|r| r.get("msg").is_none() && r.get("text").is_none())
    );
    let first_ping = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gzip_bytes(&format!(r#"{{"ping":{}}}"#, PING_BASE + 1)),
    );
    assert!(recs.iter().any(|r| r["bin"] == first_ping.as_str()));
    let plain = inflated(&recs);
    let acks = plain.iter().filter(|r| r["msg"]["status"] == "ok").count();
    assert_eq!(acks, 2);
    assert_contiguous(&ticks(&plain), (minutes * 60 - 100) as usize);
    assert!(events(&recs, "subscription_silent").is_empty());
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert_eq!(reasons(&recs), ["shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn htx_answers_every_ping_with_its_own_number_and_records_the_gzip_frames_as_received() {
    htx_pings_answered(
        "htx-spot",
        "/ws",
        ["market.btcusdt.trade.detail", "market.btcusdt.bbo"],
        60,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn htx_linear_answers_every_ping_with_its_own_number() {
    htx_pings_answered(
        "htx-linear",
        "/linear-swap-ws",
        [
            "market.BTC-USDT.trade.detail",
            "market.BTC-USDT.depth.step0",
        ],
        15,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_htx_fake_closes_a_client_that_does_not_answer_its_pings() {
    // A plain stream sends the subscription but answers no ping: HTX cuts it after 10 s.
    let venue = FakeVenue::start(htx_venue()).await;
    let (recs, _) = record_for(
        &format!(
            "url = \"{}\"\nsubscribe = ['{{\"sub\":\"market.btcusdt.trade.detail\",\"id\":\"1\"}}']",
            venue.url("/ws")
        ),
        Duration::from_secs(30),
    )
    .await;
    let closed = venue.closed_by_venue();
    assert!(!closed.is_empty(), "{:?}", venue.seen());
    assert_eq!(closed[0].what, "venue closed: test_request unanswered");
    // The first ping 5 s after the subscription, the cut 10 s later (give or take the steps of
    // the driven clock on a busy machine).
    assert!(
        (Duration::from_secs(15)..=Duration::from_secs(17)).contains(&closed[0].at),
        "{:?}",
        closed[0].at
    );
    assert!(reasons(&recs).contains(&"closed_by_server".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htx_spot_incremental_books_are_subscribed_on_the_feed_path() {
    let pki = tempfile::tempdir().unwrap();
    let door = FakeVenue::front_door(htx_venue(), "api.huobi.pro", pki.path()).await;
    let recs = record_through(
        &door,
        "htx-spot",
        r#"["market.btcusdt.trade.detail", "market.btcusdt.mbp.150"]"#,
        12,
    )
    .await;
    assert!(door.connects().iter().all(|c| c == "api.huobi.pro:443"));
    let targets: BTreeSet<String> = door.targets().into_iter().collect();
    assert_eq!(
        targets,
        BTreeSet::from(["/feed".to_owned(), "/ws".to_owned()])
    );
    let delivered: BTreeSet<String> = inflated(&recs)
        .iter()
        .filter_map(|r| Some(r.get("msg")?.get("ch")?.as_str()?.to_owned()))
        .collect();
    assert_eq!(
        delivered,
        BTreeSet::from([
            "market.btcusdt.mbp.150".to_owned(),
            "market.btcusdt.trade.detail".to_owned()
        ])
    );
    assert!(events(&recs, "subscription_rejected").is_empty());
    door.assert_never_closed("htx-spot");
}

/// One frame of HTX's real shape per channel (ccxt `ts/src/pro/htx.ts` quotes each; the depth
/// snapshot from HTX's spot documentation), for the topic's own channel and symbol.
fn htx_frame(topic: &str) -> Option<String> {
    let channel = topic.splitn(3, '.').nth(2)?;
    let frame = match channel {
        "trade.detail" => {
            r#"{"ch":"market.btcusdt.trade.detail","ts":1583495834011,"tick":{"id":105004645372,"ts":1583495833751,"data":[{"id":10500464537273190000000,"ts":1583495833751,"tradeId":102090727790,"amount":0.003893,"price":9150.01,"direction":"sell"}]}}"#
        }
        "depth.step0" => {
            r#"{"ch":"market.btcusdt.depth.step0","ts":1630983549503,"tick":{"bids":[[52690.69,0.36281],[52690.68,0.2]],"asks":[[52690.7,0.372591],[52691.26,0.13]],"version":136998124622,"ts":1630983549500}}"#
        }
        "mbp.150" => {
            r#"{"ch":"market.btcusdt.mbp.150","ts":1583472025885,"tick":{"seqNum":104998984994,"prevSeqNum":104998984977,"bids":[[9058.27,0],[9058.43,0],[9058.99,0]],"asks":[[9084.27,0.2],[9085.69,0],[9085.81,0]]}}"#
        }
        "kline.1min" => {
            r#"{"ch":"market.btcusdt.kline.1min","ts":1583501786794,"tick":{"id":1583501760,"open":9094.5,"close":9094.51,"low":9094.5,"high":9094.51,"amount":0.44639786263800907,"vol":4059.76919054,"count":16}}"#
        }
        "bbo" => {
            r#"{"ch":"market.btcusdt.bbo","ts":1671941599613,"tick":{"seqId":161499562790,"ask":16829.51,"askSize":0.707776,"bid":16829.5,"bidSize":1.685945,"quoteTime":1671941599612,"symbol":"btcusdt"}}"#
        }
        "detail" => {
            r#"{"ch":"market.btcusdt.detail","ts":1583494163784,"tick":{"id":209988464418,"low":8988,"high":9155.41,"open":9078.91,"close":9136.46,"vol":237813910.5928412,"amount":26184.202558551195,"version":209988464418,"count":265673}}"#
        }
        _ => return None,
    };
    Some(frame.replace(&format!("market.btcusdt.{channel}"), topic))
}

/// HTX's answer for the liveness test: the ack, then the topic's real-shaped frame.
fn htx_live_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let mut out = htx_answer(t, st);
    if let Some(topic) = parse(t)["sub"].as_str() {
        out.extend(htx_frame(topic));
    }
    out
}

/// The HTX fake for [`every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    let symbol = match preset {
        "htx-spot" => "btcusdt",
        "htx-linear" => "BTC-USDT",
        _ => return None,
    };
    Some(Live {
        symbol,
        answer: htx_live_answer,
        frame: htx_frame,
        encode: gzip_frame,
    })
}
