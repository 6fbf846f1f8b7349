//! Coinbase Advanced Trade: topics `channel:PRODUCT` (`level2:BTC-USD`), subscribed per channel
//! with a list of products, plus the `heartbeats` channel that keeps quiet channels open.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, data_of, parsed, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    check: super::channel_colon_symbol,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    let heartbeats = json!({"type": "subscribe", "channel": "heartbeats"});
    let mut out = vec![Outgoing::new(&heartbeats, Vec::new(), None)];
    out.extend(super::per_channel(topics, per_msg, |channel, products| {
        json!({"type": "subscribe", "product_ids": products, "channel": channel})
    }));
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""channel":"subscriptions""#) || super::has(msg, r#""type":"error""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if s(v, "type") == Some("error") {
        return Signal::Reject {
            id: None,
            keys: Vec::new(),
            reason: s(v, "message").unwrap_or("error").to_owned(),
        };
    }
    let Some(channel) = s(v, "channel") else {
        return Signal::Other;
    };
    let subscribed = match channel {
        "subscriptions" => {
            let mut keys = Vec::new();
            let events = v.get("events").and_then(Value::as_array);
            for e in events.into_iter().flatten() {
                let subs = e.get("subscriptions").and_then(Value::as_object);
                for (c, products) in subs.into_iter().flatten() {
                    for p in products.as_array().into_iter().flatten() {
                        if let Some(p) = p.as_str() {
                            keys.push(format!("{c}:{p}"));
                        }
                    }
                }
            }
            return Signal::Ack {
                id: None,
                keys,
                complete: false,
            };
        }
        "heartbeats" => return Signal::Other,
        "l2_data" => "level2",
        other => other,
    };
    let events = v.get("events").unwrap_or(&Value::Null);
    data_of(
        products(channel, events)
            .into_iter()
            .map(|p| format!("{subscribed}:{p}"))
            .collect(),
    )
}

/// The products a Coinbase message speaks for: `events[].product_id` (`l2_data`), the
/// `product_id` of each entry of an event's list (`trades`, `tickers`, `candles`), and for
/// `status` the `id` of each of `events[].products` (the status channel names products by `id`:
/// docs.cdp.coinbase.com, advanced-trade-apis/websocket/websocket-channels, status channel).
fn products(channel: &str, events: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_owned());
        }
    };
    let id_key = if channel == "status" {
        "id"
    } else {
        "product_id"
    };
    for e in events.as_array().into_iter().flatten() {
        if let Some(p) = s(e, "product_id") {
            // One product per event (`l2_data`): its updates need not be walked.
            add(p);
            continue;
        }
        let lists = e
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_array);
        for item in lists.flatten() {
            if let Some(p) = s(item, id_key) {
                add(p);
            }
        }
    }
    out
}
