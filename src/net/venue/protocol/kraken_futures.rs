//! Kraken Futures (derivatives) v1: topics `feed:PRODUCT` (`book:PF_XBTUSD`,
//! `trade:PI_XBTUSD`), subscribed per feed with a list of `product_ids`, after a subscription to
//! the `heartbeat` feed that keeps quiet connections observable. No request ids: acks
//! (`{"event":"subscribed","feed":…,"product_ids":[…]}`) name the feed and products, errors
//! (`{"event":"error","message":…}`) name neither. Data names its `feed` and `product_id`; a
//! feed's first message comes under its own name (`book_snapshot`, `trade_snapshot`), recognised
//! as the feed's (<https://docs.kraken.com/exchange/api-reference/futures-websocket>; message shapes
//! as nautilus_trader's Kraken adapter parses them, `crates/adapters/kraken/src/websocket/futures`).

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    binary: super::binary_is_data,
    check: super::channel_colon_symbol,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
};

/// The feed a data message counts for: a snapshot feed is its feed's first message.
fn feed_of(name: &str) -> &str {
    name.strip_suffix("_snapshot").unwrap_or(name)
}

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    let heartbeat = json!({"event": "subscribe", "feed": "heartbeat"});
    let mut out = vec![Outgoing::new(&heartbeat, Vec::new(), None)];
    out.extend(super::per_channel(
        topics,
        per_msg,
        |feed, products| json!({"event": "subscribe", "feed": feed, "product_ids": products}),
    ));
    out
}

/// Acks, errors, alerts and the connect `info` carry `event`; data never does.
fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""event":"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

/// `feed:product` for every product of a message's `product_ids`.
fn keys(v: &Value) -> Vec<String> {
    let feed = s(v, "feed").map_or("", feed_of);
    v.get("product_ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|p| format!("{feed}:{p}"))
        .collect()
}

fn signal(v: &Value) -> Signal {
    match s(v, "event") {
        Some("subscribed") => Signal::Ack {
            id: None,
            keys: keys(v),
            complete: false,
        },
        Some("subscribed_failed") => Signal::Reject {
            id: None,
            keys: keys(v),
            reason: s(v, "message").unwrap_or("subscribed_failed").to_owned(),
        },
        Some(event @ ("error" | "alert")) => Signal::Reject {
            id: None,
            keys: keys(v),
            reason: s(v, "message").unwrap_or(event).to_owned(),
        },
        Some(_) => Signal::Other,
        None => match (s(v, "feed"), s(v, "product_id")) {
            (Some("heartbeat"), _) | (None, _) => Signal::Other,
            (Some(feed), Some(product)) => {
                Signal::Data(Some(format!("{}:{product}", feed_of(feed))))
            }
            (Some(_), None) => Signal::Data(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(msg: &str) -> Signal {
        classify(msg.as_bytes())
    }

    fn data(key: &str) -> Signal {
        super::super::data_of(vec![key.to_owned()])
    }

    /// Frames as nautilus_trader's test data has them (`ws_futures_*.json`), one line each;
    /// `ticker_lite` with the fields its page lists
    /// (https://docs.kraken.com/exchange/api-reference/futures-websocket/ticker_lite).
    const BOOK_SNAPSHOT: &str = r#"{"feed":"book_snapshot","product_id":"PI_XBTUSD","timestamp":1612269825817,"seq":326072249,"tickSize":null,"bids":[{"price":34892.5,"qty":6385},{"price":34892,"qty":10924}],"asks":[{"price":34911.5,"qty":20598},{"price":34912,"qty":2300}]}"#;
    const BOOK: &str = r#"{"feed":"book","product_id":"PI_XBTUSD","side":"sell","seq":326094134,"price":34981,"qty":0,"timestamp":1612269953629}"#;
    const TRADE_SNAPSHOT: &str = r#"{"feed":"trade_snapshot","product_id":"PI_XBTUSD","trades":[{"feed":"trade","product_id":"PI_XBTUSD","uid":"caa9c653-420b-4c24-a9f1-462a054d86f1","side":"sell","type":"fill","seq":655508,"time":1612269657781,"qty":440,"price":34893}]}"#;
    const TRADE: &str = r#"{"feed":"trade","product_id":"PI_XBTUSD","uid":"05af78ac-a774-478c-a50c-8b9c234e071e","side":"sell","type":"fill","seq":653355,"time":1612266317519,"qty":15000,"price":34969.5}"#;
    const TICKER: &str = r#"{"time":1676393235406,"product_id":"PI_XBTUSD","funding_rate":-6.2604214e-11,"feed":"ticker","bid":21978.5,"ask":21987.0,"bid_size":2536.0,"ask_size":13948.0,"volume":31403908.0,"dtm":0,"leverage":"50x","index":21984.54,"premium":-0.0,"last":21983.5,"change":1.9974017538161748,"suspended":false,"tag":"perpetual","pair":"XBT:USD","openInterest":30072580.0,"markPrice":21979.68641534714,"maturityTime":0,"post_only":false,"volumeQuote":31403908.0}"#;
    const TICKER_LITE: &str = r#"{"feed":"ticker_lite","product_id":"PI_XBTUSD","bid":21978.5,"ask":21987.0,"change":1.99,"premium":-0.0,"volume":31403908.0,"tag":"perpetual","pair":"XBT:USD","dtm":0,"maturityTime":0,"volumeQuote":31403908.0}"#;

    #[test]
    fn subscribe_messages_start_with_the_heartbeat_feed() {
        let topics: Vec<String> = ["book:PI_XBTUSD", "trade:PI_XBTUSD", "book:PF_ETHUSD"]
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        let out = subscribe(&topics, 10, &mut 1);
        let texts: Vec<&str> = out.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                r#"{"event":"subscribe","feed":"heartbeat"}"#,
                r#"{"event":"subscribe","feed":"book","product_ids":["PI_XBTUSD","PF_ETHUSD"]}"#,
                r#"{"event":"subscribe","feed":"trade","product_ids":["PI_XBTUSD"]}"#,
            ]
        );
        assert!(out[0].topics.is_empty());
        assert_eq!(out[1].topics, ["book:PI_XBTUSD", "book:PF_ETHUSD"]);
        assert!(out.iter().all(|m| m.id.is_none()));
        // At most `per_msg` products a message.
        assert_eq!(subscribe(&topics, 1, &mut 1).len(), 4);
    }

    #[test]
    fn data_of_every_feed_snapshots_included_counts_for_its_topic() {
        assert_eq!(c(BOOK_SNAPSHOT), data("book:PI_XBTUSD"));
        assert_eq!(c(BOOK), data("book:PI_XBTUSD"));
        assert_eq!(c(TRADE_SNAPSHOT), data("trade:PI_XBTUSD"));
        assert_eq!(c(TRADE), data("trade:PI_XBTUSD"));
        assert_eq!(c(TICKER), data("ticker:PI_XBTUSD"));
        assert_eq!(c(TICKER_LITE), data("ticker_lite:PI_XBTUSD"));
        assert_eq!(
            c(r#"{"feed":"heartbeat","time":1786310819681}"#),
            Signal::Other
        );
        // Common data is not parsed in steady state, even a snapshot whose trades name a feed.
        for frame in [
            BOOK_SNAPSHOT,
            BOOK,
            TRADE_SNAPSHOT,
            TRADE,
            TICKER,
            TICKER_LITE,
        ] {
            assert!(!needs_look(frame.as_bytes()), "{frame}");
        }
    }

    #[test]
    fn acks_refusals_and_errors() {
        let ack = r#"{"event":"subscribed","feed":"book","product_ids":["PI_XBTUSD","PF_ETHUSD"]}"#;
        assert!(needs_look(ack.as_bytes()));
        assert_eq!(
            c(ack),
            Signal::Ack {
                id: None,
                keys: vec!["book:PI_XBTUSD".into(), "book:PF_ETHUSD".into()],
                complete: false
            }
        );
        assert_eq!(
            c(r#"{"event":"subscribed","feed":"heartbeat"}"#),
            Signal::Ack {
                id: None,
                keys: Vec::new(),
                complete: false
            }
        );
        assert_eq!(
            c(r#"{"event":"subscribed_failed","feed":"trade","product_ids":["PI_FOOUSD"]}"#),
            Signal::Reject {
                id: None,
                keys: vec!["trade:PI_FOOUSD".into()],
                reason: "subscribed_failed".into()
            }
        );
        let error = r#"{"event":"error","message":"Invalid product id"}"#;
        assert!(needs_look(error.as_bytes()));
        assert_eq!(
            c(error),
            Signal::Reject {
                id: None,
                keys: Vec::new(),
                reason: "Invalid product id".into()
            }
        );
        assert!(matches!(
            c(r#"{"event":"alert","message":"Bad websocket message"}"#),
            Signal::Reject { reason, .. } if reason == "Bad websocket message"
        ));
        // The greeting on connect.
        assert_eq!(c(r#"{"event":"info","version":1}"#), Signal::Other);
    }
}
