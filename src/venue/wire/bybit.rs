//! Bybit v5 public streams: topics `channel.SYMBOL` (`publicTrade.BTCUSDT`), subscribed in
//! batches with a `req_id` that the venue echoes; data names its topic in `topic`.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, id_of, parsed, s, take_id, two};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn check(topic: &str) -> Result<(), String> {
    two(topic, '.', "channel.SYMBOL")
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for chunk in topics.chunks(per_msg) {
        let id = take_id(next_id);
        let m = json!({"req_id": id.to_string(), "op": "subscribe", "args": chunk});
        out.push(Outgoing::new(&m, chunk.to_vec(), Some(id)));
    }
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""op":"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if let Some(topic) = s(v, "topic") {
        return Signal::Data(Some(topic.to_owned()));
    }
    if s(v, "op") == Some("subscribe") {
        let id = id_of(v, "req_id");
        if v.get("success").and_then(Value::as_bool) == Some(false) {
            let msg = s(v, "ret_msg").unwrap_or("").to_owned();
            // "error:handler not found,topic:foo.BAR" names the refused topic.
            let keys = msg
                .split("topic:")
                .nth(1)
                .map(|t| vec![t.split(',').next().unwrap_or(t).to_owned()])
                .unwrap_or_default();
            return Signal::Reject {
                id,
                keys,
                reason: msg,
            };
        }
        return Signal::Ack {
            id,
            keys: Vec::new(),
            complete: false,
        };
    }
    Signal::Other
}
