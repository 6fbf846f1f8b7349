//! BitMEX realtime: topics `table:SYMBOL` (`trade:XBTUSD`); acks echo the topic in `subscribe`,
//! the welcome message counts the connects left.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, reason, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    check: super::channel_colon_symbol,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .chunks(per_msg)
        .map(|chunk| {
            let m = json!({"op": "subscribe", "args": chunk});
            Outgoing::new(&m, chunk.to_vec(), None)
        })
        .collect()
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""success""#)
        || super::has(msg, r#""error""#)
        || super::has(msg, r#""remaining""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    // The welcome message counts the connects left: `{"info":"Welcome to the BitMEX Realtime
    // API.",…,"limit":{"remaining":719}}`.
    if let Some(left) = v
        .get("limit")
        .and_then(|l| l.get("remaining"))
        .and_then(Value::as_u64)
    {
        return Signal::ConnectsLeft(left);
    }
    if let Some(table) = s(v, "table") {
        let sym = v
            .get("data")
            .and_then(|d| d.get(0))
            .and_then(|d| s(d, "symbol"))
            .or_else(|| v.get("filter").and_then(|f| s(f, "symbol")));
        return match sym {
            Some(sym) => Signal::Data(Some(format!("{table}:{sym}"))),
            // The `liquidation` partial answers each subscription with `"filter":{}` and
            // `"data":[]` (a 2024 recording of wss://ws.bitmex.com/realtime): it names the table
            // only, and speaks for its topics.
            None => Signal::DataOfPrefix(format!("{table}:")),
        };
    }
    if let Some(topic) = s(v, "subscribe")
        && v.get("success").and_then(Value::as_bool) == Some(true)
    {
        return Signal::Ack {
            id: None,
            keys: vec![topic.to_owned()],
            complete: false,
        };
    }
    if let Some(e) = v.get("error") {
        let args = v
            .get("request")
            .and_then(|r| r.get("args"))
            .and_then(Value::as_array);
        return Signal::Reject {
            id: None,
            keys: args
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            reason: reason(e),
        };
    }
    Signal::Other
}
