//! Crypto.com Exchange v1 market data (`cryptocom`) against a fake Crypto.com that keeps its
//! rules (https://exchange-docs.crypto.com/exchange/v1/rest-ws/index.html): every 30 s it sends
//! `public/heartbeat` with a fresh id and closes the connection unless
//! `public/respond-heartbeat` with that id comes within 5 s; it refuses a request naming an
//! unknown instrument or a malformed channel; and requests must wait 1 s after the connection
//! opens (checked on the fake's log of when each connection opened and what it received).
//!
//! Frames are of Crypto.com's real v1 shape, as its documentation shows them and ccxt
//! (`ts/src/pro/cryptocom.ts`) quotes them.

use std::cell::RefCell;
use std::collections::HashSet;

use super::*;

thread_local! {
    /// Heartbeat ids sent and not yet answered (the fake runs on the test's thread).
    static HEARTBEATS: RefCell<(u64, HashSet<u64>)> = RefCell::new((1_587_523_073_344, HashSet::new()));
}

/// A channel Crypto.com serves: trade/ticker of an instrument, a book of depth 10 or 50, a
/// candlestick of a known interval.
fn known(channel: &str) -> bool {
    let p: Vec<&str> = channel.split('.').collect();
    let instrument_ok = |i: &str| !i.is_empty() && !i.contains("NOPE");
    match p[..] {
        ["trade" | "ticker", i] => instrument_ok(i),
        ["book", i, d] => instrument_ok(i) && ["10", "50"].contains(&d),
        ["candlestick", t, i] => {
            instrument_ok(i)
                && [
                    "1m", "5m", "15m", "30m", "1h", "2h", "4h", "12h", "1D", "7D", "14D", "1M",
                ]
                .contains(&t)
        }
        _ => false,
    }
}

/// One data frame of Crypto.com's real shape for `topic`, numbered `n` (a field of the test's
/// own, for the tick count). A book's first frame (`n` 0) is its snapshot, the others deltas.
fn cc_frame(topic: &str, n: u64) -> String {
    let p: Vec<&str> = topic.split('.').collect();
    let result = match p[..] {
        ["trade", i] => json!({"instrument_name": i, "subscription": topic, "channel": "trade",
            "data": [{"d": format!("{}", 4611686018455979970u64 + n), "t": 1718946421218u64, "p": "64810.2", "q": "0.0010", "s": "BUY", "i": i, "m": "2", "n": n}]}),
        ["ticker", i] => json!({"instrument_name": i, "subscription": topic, "channel": "ticker",
            "data": [{"h": "51790.00", "l": "47895.50", "a": "51174.500000", "c": "0.0000", "b": "51174.500000", "bs": "0.1000", "k": "51177.000000", "ks": "0.1000", "i": i, "v": "879.5024", "vv": "26370000.12", "oi": "12345.12", "t": 1613580710768u64, "n": n}]}),
        ["book", i, d] if n == 0 => {
            json!({"instrument_name": i, "subscription": topic, "channel": "book", "depth": d.parse::<u64>().unwrap_or(50),
            "data": [{"asks": [["50126.000000", "0.400000", "2"]], "bids": [["50113.500000", "0.400000", "2"]], "t": 1613580710768u64, "tt": 1613580710731u64, "u": 78795598162080u64, "cs": -781431132, "n": n}]})
        }
        ["book", i, d] => {
            json!({"instrument_name": i, "subscription": topic, "channel": "book.update", "depth": d.parse::<u64>().unwrap_or(50),
            "data": [{"update": {"asks": [["43755.46", "0.10000", "1"]], "bids": [["43737.46", "0.14096", "1"]]}, "t": 1704484068898u64, "tt": 1704484068892u64, "u": 78795598162080u64 + n, "pu": 78795598162080u64 + n - 1, "cs": -781431132, "n": n}]})
        }
        ["candlestick", t, i] => {
            json!({"instrument_name": i, "subscription": topic, "channel": "candlestick", "interval": t,
            "data": [{"o": "64810.2", "h": "64820.0", "l": "64800.1", "c": "64815.5", "v": "1.2", "t": 1718946420000u64, "n": n}]})
        }
        _ => panic!("the fake Crypto.com has no frame for {topic}"),
    };
    json!({"id": -1, "method": "subscribe", "code": 0, "result": result}).to_string()
}

/// The fake Crypto.com's answer to one client text: heartbeat answers clear the pending
/// heartbeat (if the id is one it sent); a subscribe request gets its answer and each
/// channel's first frame, or a refusal.
fn answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    match v["method"].as_str() {
        Some("public/respond-heartbeat") => {
            let id = v["id"].as_u64().unwrap_or(0);
            if HEARTBEATS.with(|h| h.borrow_mut().1.remove(&id)) {
                st.test_pending = None;
            }
            Vec::new()
        }
        Some("subscribe") => {
            // Crypto.com's heartbeats come whatever the request's fate.
            st.subscribed = true;
            let channels = strings(&v["params"]["channels"]);
            if let Some(bad) = channels.iter().find(|c| !known(c)) {
                return vec![json!({"id": v["id"], "code": 10004, "method": "subscribe", "message": format!("invalid channel {{\"channels\":[\"{bad}\"]}}")}).to_string()];
            }
            let mut out =
                vec![json!({"id": v["id"], "method": "subscribe", "code": 0}).to_string()];
            for c in channels {
                out.push(cc_frame(&c, 0));
                st.streams.push(c);
            }
            out
        }
        _ => Vec::new(),
    }
}

fn cryptocom_venue() -> Venue {
    Venue {
        answer,
        heartbeat: Some((Duration::from_secs(30), |_| {
            let id = HEARTBEATS.with(|h| {
                let mut h = h.borrow_mut();
                h.0 += 30_000;
                let id = h.0;
                h.1.insert(id);
                id
            });
            vec![json!({"id": id, "method": "public/heartbeat", "code": 0}).to_string()]
        })),
        test_request_deadline: Some(Duration::from_secs(5)),
        data: |n, st| st.streams.iter().map(|t| cc_frame(t, n)).collect(),
        data_every: Duration::from_secs(60),
        ..quiet_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn cryptocom_waits_a_second_answers_every_heartbeat_and_splits_large_lists() {
    let venue = FakeVenue::start(cryptocom_venue()).await;
    let p = wsrec::net::venue::find("cryptocom").unwrap();
    // Every listed channel of one instrument, 230 trade topics and one unknown instrument:
    // 200 topics per connection.
    let mut topics: Vec<String> = p
        .channels
        .iter()
        .map(|c| format!("\"{}\"", (p.combine)(c, "BTCUSD-PERP")))
        .collect();
    topics.extend((0..230).map(|i| format!("\"trade.S{i:03}_USDT\"")));
    topics.push("\"trade.NOPE_USDT\"".to_owned());
    let (recs, snap) = record_for(
        &format!(
            "venue = \"cryptocom\"\nurl = \"{}\"\ntopics = [{}]",
            venue.url("/exchange/v1/market"),
            topics.join(", ")
        ),
        Duration::from_secs(600),
    )
    .await;
    venue.assert_never_closed("cryptocom");
    assert_eq!(venue.connections(), 2);
    let seen = venue.seen();
    for c in 1..=2 {
        // The first request comes 1 s after the connection opened, no sooner.
        let opened = seen
            .iter()
            .find(|s| s.conn == c && s.what == "open")
            .unwrap()
            .at;
        let first = seen
            .iter()
            .find(|s| s.conn == c && s.what.starts_with("text "))
            .unwrap()
            .at;
        assert!(
            first - opened >= Duration::from_secs(1),
            "connection {c}: {:?}",
            first - opened
        );
        let texts = venue.texts(c);
        // Every heartbeat answered: one every 30 s for 10 minutes.
        let answers = texts
            .iter()
            .filter(|t| t.contains("public/respond-heartbeat"))
            .count();
        assert!(
            (18..=20).contains(&answers),
            "connection {c}: {answers} answers"
        );
        // At most 50 channels per request, books asked for as deltas.
        for t in texts
            .iter()
            .filter(|t| t.contains(r#""method":"subscribe""#))
        {
            let v = parse(t);
            let channels = strings(&v["params"]["channels"]);
            assert!(channels.len() <= 50);
            if channels.iter().any(|c| c.starts_with("book.")) {
                assert_eq!(v["params"]["book_subscription_type"], "SNAPSHOT_AND_UPDATE");
            }
        }
    }
    assert!(
        seen.iter()
            .all(|s| s.what != "venue closed: test_request unanswered")
    );
    // The request naming the unknown instrument is refused with its topics; nothing else.
    let rejected = events(&recs, "subscription_rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let refused = strings(&rejected[0]["topics"]);
    assert!(
        refused.contains(&"trade.NOPE_USDT".to_owned()),
        "{refused:?}"
    );
    assert!(rejected[0]["reason"].as_str().unwrap().contains("10004"));
    assert_eq!(snap.streams[0].subscriptions_failed, refused.len() as u64);
    assert!(events(&recs, "subscription_silent").is_empty());
    // Every channel of the instrument delivers, books snapshot then deltas.
    for c in p.channels {
        let topic = (p.combine)(c, "BTCUSD-PERP");
        assert!(
            recs.iter().any(|r| r
                .get("msg")
                .is_some_and(|m| m["result"]["subscription"] == topic.as_str())),
            "{topic}"
        );
    }
    assert!(recs.iter().any(|r| {
        r.get("msg")
            .is_some_and(|m| m["result"]["channel"] == "book.update")
    }));
    assert_eq!(reasons(&recs), ["shutdown", "shutdown"]);
    assert_contiguous(&ticks(&recs), 10);
}

/// Crypto.com's fake for [`super::every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "cryptocom").then_some(Live {
        encode: text_frame,
        symbol: "BTCUSD-PERP",
        answer,
        frame: |topic| Some(cc_frame(topic, 0)),
    })
}

#[tokio::test]
async fn cryptocom_is_dialled_at_its_v1_market_data_address() {
    let pki = tempfile::tempdir().unwrap();
    let door = FakeVenue::front_door(cryptocom_venue(), "stream.crypto.com", pki.path()).await;
    let recs = record_through(&door, "cryptocom", "[\"trade.BTCUSD-PERP\"]", 2).await;
    assert!(
        door.connects().iter().all(|c| c == "stream.crypto.com:443"),
        "{:?}",
        door.connects()
    );
    assert!(
        door.targets().iter().all(|t| t == "/exchange/v1/market"),
        "{:?}",
        door.targets()
    );
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert!(recs.iter().any(|r| {
        r.get("msg")
            .is_some_and(|m| m["result"]["subscription"] == "trade.BTCUSD-PERP")
    }));
}
