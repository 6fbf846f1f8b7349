//! Coinbase Exchange, the classic feed (`wss://ws-feed.exchange.coinbase.com`): topics
//! `channel:PRODUCT` (`matches:BTC-USD`), subscribed per channel as
//! `{"type":"subscribe","product_ids":[…],"channels":["matches"]}`, after the `heartbeat`
//! channel for every product of the connection, a message each (one heartbeat a second per
//! product: the liveness signal of quiet products). `status` takes no product and lists every product in
//! each message. Acks are `{"type":"subscriptions","channels":[{"name":…,"product_ids":[…]}]}`;
//! refusals `{"type":"error","message":"Failed to subscribe","reason":"X is not a valid
//! product"}` (<https://docs.cdp.coinbase.com/exchange/websocket-feed>, …/channels; the error
//! shape as barter-data documents it). Data names its product in `product_id` and its kind in
//! `type`, not its channel: `ticker` for `ticker` and `ticker_batch`, `snapshot`/`l2update` for
//! `level2_batch`, `match`/`last_match` for `matches`, so a topic's key is the kind of data it
//! brings ([`key`]).

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, data_of, parsed, s, symbol_of};

pub(super) const PROTOCOL: Protocol = Protocol {
    binary: super::binary_is_data,
    check: super::channel_colon_symbol,
    key,
    subscribe,
    needs_look,
    classify,
};

/// The data a channel brings, as its topics' keys name it.
fn kind(channel: &str) -> &str {
    match channel {
        "level2_batch" | "level2" | "level2_50" => "level2",
        "ticker_batch" => "ticker",
        other => other,
    }
}

/// `ticker_batch:BTC-USD` is recognised as `ticker:BTC-USD`: both bring `ticker` messages.
fn key(topic: &str) -> String {
    let (channel, product) = topic.split_once(':').unwrap_or((topic, ""));
    format!("{}:{product}", kind(channel))
}

/// The key channel of a data message's `type`.
fn kind_of_type(t: &str) -> Option<&'static str> {
    Some(match t {
        "snapshot" | "l2update" => "level2",
        "match" | "last_match" => "matches",
        "ticker" => "ticker",
        "heartbeat" => "heartbeat",
        _ => return None,
    })
}

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    let channel_of = |t: &Topic| t.split_once(':').map_or("", |(c, _)| c).to_owned();
    // Heartbeats for every product of the connection that is not subscribed to them already
    // (Coinbase counts a duplicate subscription against its limit of 10 per product and channel).
    let mut products: Vec<&str> = Vec::new();
    for t in topics {
        let p = symbol_of(t);
        let has_heartbeat = topics
            .iter()
            .any(|u| channel_of(u) == "heartbeat" && symbol_of(u) == p);
        if !matches!(channel_of(t).as_str(), "heartbeat" | "status")
            && !has_heartbeat
            && !products.contains(&p)
        {
            products.push(p);
        }
    }
    // One message a product: Coinbase refuses a whole message for one unknown product, which
    // would leave every product of the message without heartbeats (and the connection quiet).
    let mut out = Vec::new();
    for p in products {
        let m = json!({"type": "subscribe", "product_ids": [p], "channels": ["heartbeat"]});
        out.push(Outgoing::new(&m, Vec::new(), None));
    }
    // `status` takes no product: one message for all its topics.
    let (status, rest): (Vec<Topic>, Vec<Topic>) = topics
        .iter()
        .cloned()
        .partition(|t| channel_of(t) == "status");
    if !status.is_empty() {
        let m = json!({"type": "subscribe", "channels": ["status"]});
        out.push(Outgoing::new(&m, status, None));
    }
    out.extend(super::per_channel(&rest, per_msg, |channel, products| {
        json!({"type": "subscribe", "product_ids": products, "channels": [channel]})
    }));
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""type":"subscriptions""#) || super::has(msg, r#""type":"error""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    match s(v, "type") {
        Some("subscriptions") => Signal::Ack {
            id: None,
            keys: acked(v),
            complete: false,
        },
        Some("error") => Signal::Reject {
            id: None,
            keys: refused(v),
            reason: match (s(v, "message"), s(v, "reason")) {
                (Some(m), Some(r)) => format!("{m}: {r}"),
                (m, r) => r.or(m).unwrap_or("error").to_owned(),
            },
        },
        // Every product, by `id`, in each message.
        Some("status") => data_of(
            v.get("products")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| s(p, "id"))
                .map(|id| format!("status:{id}"))
                .collect(),
        ),
        Some(t) => match (kind_of_type(t), s(v, "product_id")) {
            (Some(kind), Some(product)) => Signal::Data(Some(format!("{kind}:{product}"))),
            _ => Signal::Other,
        },
        None => Signal::Other,
    }
}

/// The keys of every channel and product a `subscriptions` message lists.
fn acked(v: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    for c in v
        .get("channels")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = s(c, "name") else { continue };
        let products = c.get("product_ids").and_then(Value::as_array);
        for p in products.into_iter().flatten().filter_map(Value::as_str) {
            keys.push(format!("{}:{p}", kind(name)));
        }
    }
    keys
}

/// The topics an error is about, where its reason names the product ("BTC-FOO is not a valid
/// product"): every kind of data of that product.
fn refused(v: &Value) -> Vec<String> {
    let Some(product) = s(v, "reason").and_then(|r| r.strip_suffix(" is not a valid product"))
    else {
        return Vec::new();
    };
    ["level2", "matches", "ticker", "heartbeat", "status"]
        .iter()
        .map(|k| format!("{k}:{product}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(msg: &str) -> Signal {
        classify(msg.as_bytes())
    }

    fn data(key: &str) -> Signal {
        data_of(vec![key.to_owned()])
    }

    fn msgs(topics: &[&str], per: usize) -> Vec<String> {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        subscribe(&topics, per, &mut 1)
            .into_iter()
            .map(|m| m.text)
            .collect()
    }

    #[test]
    fn heartbeats_first_then_a_message_per_channel() {
        assert_eq!(
            msgs(
                &[
                    "matches:BTC-USD",
                    "level2_batch:BTC-USD",
                    "matches:ETH-USD",
                    "status:BTC-USD"
                ],
                10
            ),
            [
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["heartbeat"]}"#,
                r#"{"type":"subscribe","product_ids":["ETH-USD"],"channels":["heartbeat"]}"#,
                r#"{"type":"subscribe","channels":["status"]}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channels":["matches"]}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch"]}"#,
            ]
        );
        // A product with its own heartbeat topic is not subscribed to heartbeats twice.
        assert_eq!(
            msgs(&["heartbeat:BTC-USD", "ticker:BTC-USD"], 10),
            [
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["heartbeat"]}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker"]}"#,
            ]
        );
        assert_eq!(key("ticker_batch:BTC-USD"), "ticker:BTC-USD");
        assert_eq!(key("level2_batch:BTC-USD"), "level2:BTC-USD");
        assert_eq!(key("matches:BTC-USD"), "matches:BTC-USD");
    }

    #[test]
    fn real_frames_are_data_of_their_topic_and_pass_without_a_look() {
        // tests/fixtures/corpus/coinbase-exchange_*.jsonl (ws-feed, 2021; the snapshot cut to a
        // level a side) and the channels page (heartbeat).
        let frames = [
            (
                r#"{"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775","open_24h":"14.6647","volume_24h":"94381.28000000","low_24h":"14.3691","high_24h":"16.55","volume_30d":"2295579.57000000","best_bid":"14.7550","best_ask":"14.8060","side":"buy","time":"2021-04-17T16:43:30.244075Z","trade_id":881613,"last_size":"0.04"}"#,
                "ticker:BAND-GBP",
            ),
            (
                r#"{"type":"last_match","trade_id":881613,"maker_order_id":"27fff20b-af29-4f45-8744-56dd1ef57dc0","taker_order_id":"1da6ce16-c8da-4732-9f71-6049f4c6aaf8","side":"sell","size":"0.04","price":"14.7775","product_id":"BAND-GBP","sequence":333938798,"time":"2021-04-17T16:43:30.244075Z"}"#,
                "matches:BAND-GBP",
            ),
            (
                r#"{"type":"l2update","product_id":"SKL-BTC","changes":[["sell","0.00001306","660.5"]],"time":"2021-04-17T16:43:37.075687Z"}"#,
                "level2:SKL-BTC",
            ),
            (
                r#"{"type":"snapshot","product_id":"BAND-GBP","asks":[["14.8060","3.1"]],"bids":[["14.7550","1.2"]]}"#,
                "level2:BAND-GBP",
            ),
            (
                r#"{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2014-11-07T08:19:28.464459Z"}"#,
                "heartbeat:BTC-USD",
            ),
        ];
        for (frame, k) in frames {
            assert_eq!(c(frame), data(k), "{frame}");
            assert!(!needs_look(frame.as_bytes()), "{frame}");
        }
        let status = r#"{"type":"status","products":[{"id":"BTC-USD","base_currency":"BTC","quote_currency":"USD","status":"online","status_message":null},{"id":"ETH-USD","base_currency":"ETH","quote_currency":"USD","status":"online","status_message":null}],"currencies":[]}"#;
        assert_eq!(
            c(status),
            Signal::DataOf(vec!["status:BTC-USD".into(), "status:ETH-USD".into()])
        );
    }

    #[test]
    fn acks_and_refusals() {
        let ack = r#"{"type":"subscriptions","channels":[{"name":"level2_batch","product_ids":["BTC-USD"]},{"name":"ticker","product_ids":["BTC-USD","ETH-USD"]},{"name":"status"}]}"#;
        assert!(needs_look(ack.as_bytes()));
        assert_eq!(
            c(ack),
            Signal::Ack {
                id: None,
                keys: vec![
                    "level2:BTC-USD".into(),
                    "ticker:BTC-USD".into(),
                    "ticker:ETH-USD".into()
                ],
                complete: false
            }
        );
        let error = r#"{"type":"error","message":"Failed to subscribe","reason":"BTC-FOO is not a valid product"}"#;
        assert!(needs_look(error.as_bytes()));
        match c(error) {
            Signal::Reject { id, keys, reason } => {
                assert_eq!(id, None);
                assert!(keys.contains(&"matches:BTC-FOO".to_owned()), "{keys:?}");
                assert_eq!(
                    reason,
                    "Failed to subscribe: BTC-FOO is not a valid product"
                );
            }
            other => panic!("{other:?}"),
        }
        // An error about something else names no topic.
        assert!(matches!(
            c(r#"{"type":"error","message":"Failed to subscribe","reason":"level2 channel requires authentication"}"#),
            Signal::Reject { keys, .. } if keys.is_empty()
        ));
    }
}
