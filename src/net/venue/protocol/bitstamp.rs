//! Bitstamp v2: topics `channel_pair` (`live_trades_btcusd`), one `bts:subscribe` each; the
//! venue's own events start with `bts:`.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, s, two};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn check(topic: &str) -> Result<(), String> {
    two(topic, '_', "channel_pair")
}

/// The currency pair of a `diff_order_book_PAIR` topic, as the REST order book takes it
/// (`diff_order_book_btcusd` → `btcusd`); `None` for other channels.
pub fn diff_symbol(topic: &str) -> Option<String> {
    topic
        .strip_prefix("diff_order_book_")
        .filter(|pair| !pair.is_empty() && pair.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
}

/// When a `diff_order_book` message's changes happened (`data.microtimestamp`, µs).
pub fn diff_first_id(msg: &[u8]) -> Option<u64> {
    super::u64_field(msg, "microtimestamp")
}

/// When a REST order book was taken (`microtimestamp`, µs).
pub fn order_book_id(body: &[u8]) -> Option<u64> {
    super::u64_field(body, "microtimestamp")
}

fn subscribe(topics: &[Topic], _per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .iter()
        .map(|t| {
            let m = json!({"event": "bts:subscribe", "data": {"channel": t}});
            Outgoing::new(&m, vec![t.clone()], None)
        })
        .collect()
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, "bts:")
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    let channel = s(v, "channel").unwrap_or("");
    match s(v, "event") {
        Some("bts:subscription_succeeded") => Signal::Ack {
            id: None,
            keys: vec![channel.to_owned()],
            complete: false,
        },
        Some("bts:error") => Signal::Reject {
            id: None,
            keys: (!channel.is_empty())
                .then(|| channel.to_owned())
                .into_iter()
                .collect(),
            reason: v
                .get("data")
                .and_then(|d| s(d, "message"))
                .unwrap_or("error")
                .to_owned(),
        },
        Some("bts:request_reconnect") => Signal::Reconnect("bts:request_reconnect".to_owned()),
        Some("bts:heartbeat") => Signal::Other,
        _ if !channel.is_empty() => Signal::Data(Some(channel.to_owned())),
        _ => Signal::Other,
    }
}
