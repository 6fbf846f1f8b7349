//! Hyperliquid: topics `type:COIN`, or `type.interval:COIN` for candles (`candle.1m:BTC`), one
//! `subscribe` message each; acks come on the `subscriptionResponse` channel.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, find_str, parsed, reason, s, split_param};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

/// Hyperliquid refuses a candle subscription without its interval.
fn check(topic: &str) -> Result<(), String> {
    if topic.starts_with("candle:") {
        return Err("candles need an interval, e.g. candle.1m:BTC".to_owned());
    }
    super::channel_colon_symbol(topic)
}

fn subscribe(topics: &[Topic], _per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .iter()
        .map(|t| {
            let (c, coin) = t.split_once(':').unwrap_or((t, ""));
            let (kind, param) = split_param(c);
            let mut sub = json!({"type": kind, "coin": coin});
            if let Some(p) = param {
                sub["interval"] = json!(p);
            }
            let m = json!({"method": "subscribe", "subscription": sub});
            Outgoing::new(&m, vec![t.clone()], None)
        })
        .collect()
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""channel":"subscriptionResponse""#)
        || super::has(msg, r#""channel":"error""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

/// `type:coin`, or `type.interval:coin` for a subscription with an interval (candles).
fn key(kind: &str, interval: Option<&str>, coin: &str) -> String {
    match interval {
        Some(i) => format!("{kind}.{i}:{coin}"),
        None => format!("{kind}:{coin}"),
    }
}

fn signal(v: &Value) -> Signal {
    let data = v.get("data").unwrap_or(&Value::Null);
    match s(v, "channel") {
        Some("subscriptionResponse") => {
            let sub = data.get("subscription").unwrap_or(&Value::Null);
            let key = match (s(sub, "type"), s(sub, "coin")) {
                (Some(kind), Some(coin)) => vec![key(kind, s(sub, "interval"), coin)],
                _ => Vec::new(),
            };
            Signal::Ack {
                id: None,
                keys: key,
                complete: false,
            }
        }
        Some("error") => Signal::Reject {
            id: None,
            keys: Vec::new(),
            reason: reason(data),
        },
        Some("pong") | None => Signal::Other,
        // A candle names its coin `s` and its interval `i`, not `coin` (WsCandle in
        // hyperliquid.gitbook.io, for-developers/api/websocket/subscriptions).
        Some("candle") => Signal::Data(s(data, "s").map(|coin| key("candle", s(data, "i"), coin))),
        Some(c) => Signal::Data(find_str(data, "coin").map(|coin| format!("{c}:{coin}"))),
    }
}
