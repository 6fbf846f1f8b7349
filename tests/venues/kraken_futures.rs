//! Kraken Futures v1 against a fake that keeps its rules: a connection that sent no ping for
//! 60 s is closed (protocol pings count:
//! https://docs.kraken.com/exchange/api-reference/futures-websocket, "send a ping at least every
//! 60 seconds"), the connection is greeted with `{"event":"info","version":1}`, subscriptions
//! are acknowledged per feed with their `product_ids`, unknown products get
//! `{"event":"error","message":"Invalid product id"}`, each feed starts with its snapshot
//! (`book_snapshot`, `trade_snapshot`), and the `heartbeat` feed ticks only for connections
//! that subscribed to it. Frames are nautilus_trader's Kraken Futures test data
//! (`crates/adapters/kraken/test_data/ws_futures_*.json`), one line each.

use super::*;

const BOOK_SNAPSHOT: &str = r#"{"feed":"book_snapshot","product_id":"PI_XBTUSD","timestamp":1612269825817,"seq":326072249,"tickSize":null,"bids":[{"price":34892.5,"qty":6385},{"price":34892,"qty":10924}],"asks":[{"price":34911.5,"qty":20598},{"price":34912,"qty":2300}]}"#;
const TRADE_SNAPSHOT: &str = r#"{"feed":"trade_snapshot","product_id":"PI_XBTUSD","trades":[{"feed":"trade","product_id":"PI_XBTUSD","uid":"caa9c653-420b-4c24-a9f1-462a054d86f1","side":"sell","type":"fill","seq":655508,"time":1612269657781,"qty":440,"price":34893},{"feed":"trade","product_id":"PI_XBTUSD","uid":"45ee9737-1877-4682-bc68-e4ef818ef88a","side":"sell","type":"fill","seq":655507,"time":1612269656839,"qty":9643,"price":34891}]}"#;
const TICKER: &str = r#"{"time":1676393235406,"product_id":"PI_XBTUSD","funding_rate":-6.2604214e-11,"funding_rate_prediction":-3.65989977e-10,"relative_funding_rate":-1.380384722222e-6,"relative_funding_rate_prediction":-8.047629166667e-6,"next_funding_rate_time":1676394000000,"feed":"ticker","bid":21978.5,"ask":21987.0,"bid_size":2536.0,"ask_size":13948.0,"volume":31403908.0,"dtm":0,"leverage":"50x","index":21984.54,"premium":-0.0,"last":21983.5,"change":1.9974017538161748,"suspended":false,"tag":"perpetual","pair":"XBT:USD","openInterest":30072580.0,"markPrice":21979.68641534714,"maturityTime":0,"post_only":false,"volumeQuote":31403908.0,"open":21968.5,"high":22123.0,"low":21456.0}"#;
/// `ticker_lite` with the fields its page lists
/// (https://docs.kraken.com/exchange/api-reference/futures-websocket/ticker_lite).
const TICKER_LITE: &str = r#"{"feed":"ticker_lite","product_id":"PI_XBTUSD","bid":21978.5,"ask":21987.0,"change":1.9974017538161748,"premium":-0.0,"volume":31403908.0,"tag":"perpetual","pair":"XBT:USD","dtm":0,"maturityTime":0,"volumeQuote":31403908.0}"#;

/// The greeting every connection gets.
const INFO: &str = r#"{"event":"info","version":1}"#;

/// The first message of `feed` for `product` (the nautilus frames, renamed to `product`).
fn first_frame(feed: &str, product: &str) -> Option<String> {
    let frame = match feed {
        "book" => BOOK_SNAPSHOT,
        "trade" => TRADE_SNAPSHOT,
        "ticker" => TICKER,
        "ticker_lite" => TICKER_LITE,
        _ => return None,
    };
    Some(frame.replace("PI_XBTUSD", product))
}

/// Kraken Futures' answer to a client message: the heartbeat feed's ack, or per feed the ack
/// and each product's first message; an error for a product it does not list.
fn answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    if v["event"] != "subscribe" {
        return Vec::new();
    }
    let feed = v["feed"].as_str().unwrap_or("");
    if feed == "heartbeat" {
        st.heartbeats = true;
        return vec![json!({"event":"subscribed","feed":"heartbeat"}).to_string()];
    }
    let products = strings(&v["product_ids"]);
    let listed = |p: &String| {
        ["PI_", "PF_", "FI_", "FF_"]
            .iter()
            .any(|k| p.starts_with(k))
    };
    if !products.iter().all(listed) {
        return vec![json!({"event":"error","message":"Invalid product id"}).to_string()];
    }
    let mut out =
        vec![json!({"event":"subscribed","feed":feed,"product_ids":products}).to_string()];
    for p in &products {
        out.extend(first_frame(feed, p));
        st.streams.push(format!("{feed}:{p}"));
    }
    st.subscribed = true;
    out
}

/// Kraken Futures: closes a connection that sent no ping for 60 s; greets it; quiet books (an
/// update every 5 minutes); the heartbeat feed every 10 s once subscribed.
fn venue() -> Venue {
    Venue {
        opened: |_, _| vec![INFO.to_owned()],
        answer,
        keeps_alive: |i| matches!(i, Incoming::Ping),
        idle_limit: Some(Duration::from_secs(60)),
        heartbeat: Some((Duration::from_secs(10), |st| {
            if st.heartbeats {
                vec![r#"{"feed":"heartbeat","time":1786310819681}"#.to_owned()]
            } else {
                Vec::new()
            }
        })),
        data: |n, st| {
            st.streams
                .iter()
                .filter_map(|s| s.strip_prefix("book:"))
                .map(|p| format!(r#"{{"feed":"book","product_id":"{p}","side":"sell","seq":{n},"price":34981,"qty":0,"timestamp":{n},"n":{n}}}"#))
                .collect()
        },
        data_every: Duration::from_secs(300),
        ..quiet_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn kraken_futures_pings_within_a_minute_lives_on_heartbeats_and_reports_unknown_products() {
    let venue = FakeVenue::start(venue()).await;
    let (recs, snap) = record_for(
        &format!(
            "venue = \"kraken-futures\"\nurl = \"{}\"\ntopics = [\"book:PF_XBTUSD\", \"book:PF_ETHUSD\", \"trade:PF_XBTUSD\", \"ticker:XBTUSD\"]",
            venue.url("/ws/v1")
        ),
        Duration::from_secs(30 * 60),
    )
    .await;
    // Protocol pings kept the connection past the 60 s rule; the book, quiet for 5 minutes at a
    // time, is carried past the silence rule by the heartbeat feed.
    venue.assert_never_closed("kraken-futures");
    assert_eq!(venue.connections(), 1);
    assert_eq!(reasons(&recs), ["shutdown"]);
    let pings = venue.seen().iter().filter(|s| s.what == "ping").count();
    assert!((55..=61).contains(&pings), "{pings} pings in 30 min");
    assert_eq!(
        venue.texts(1),
        [
            r#"{"event":"subscribe","feed":"heartbeat"}"#,
            r#"{"event":"subscribe","feed":"book","product_ids":["PF_XBTUSD","PF_ETHUSD"]}"#,
            r#"{"event":"subscribe","feed":"trade","product_ids":["PF_XBTUSD"]}"#,
            r#"{"event":"subscribe","feed":"ticker","product_ids":["XBTUSD"]}"#,
        ]
    );
    // Snapshots count for their feed; the error names no product, so the one it was about is
    // reported silent too, by name.
    let rejected = events(&recs, "subscription_rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["reason"], "Invalid product id");
    let silent = events(&recs, "subscription_silent");
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0]["not_acknowledged"], json!(["ticker:XBTUSD"]));
    assert_eq!(silent[0]["acknowledged"], json!([]));
    assert_eq!(snap.streams[0].subscriptions_failed, 1);
    // Every message as sent: the greeting, the snapshots, the quiet book's updates.
    let msgs = raw_msgs(&recs);
    assert!(msgs.iter().any(|m| m == INFO));
    assert!(
        msgs.iter()
            .any(|m| *m == BOOK_SNAPSHOT.replace("PI_XBTUSD", "PF_ETHUSD"))
    );
    assert_contiguous(&ticks(&recs), 5);
}

/// The fake of kraken-futures for
/// [`super::every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`]:
/// `book` and `trade` deliver their snapshot feeds (`book_snapshot`, `trade_snapshot`) and
/// nothing else, so the snapshot must count for the feed.
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "kraken-futures").then_some(Live {
        encode: text_frame,
        symbol: "PI_XBTUSD",
        answer,
        frame: |topic| {
            let (feed, product) = topic.split_once(':')?;
            first_frame(feed, product)
        },
    })
}
