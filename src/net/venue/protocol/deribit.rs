//! Deribit JSON-RPC: topics `channel.INSTRUMENT.interval` (`trades.BTC-PERPETUAL.100ms`); a
//! `public/set_heartbeat` first, then `public/subscribe` with ids the venue echoes; its
//! `test_request` heartbeats must be answered.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, id_of, parsed, reason, s, take_id, two};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn check(topic: &str) -> Result<(), String> {
    two(topic, '.', "channel.INSTRUMENT.interval")
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let id = take_id(next_id);
    let m = json!({"jsonrpc": "2.0", "id": id, "method": "public/set_heartbeat", "params": {"interval": 30}});
    let mut out = vec![Outgoing::new(&m, Vec::new(), Some(id))];
    for chunk in topics.chunks(per_msg) {
        let id = take_id(next_id);
        let m = json!({"jsonrpc": "2.0", "id": id, "method": "public/subscribe", "params": {"channels": chunk}});
        out.push(Outgoing::new(&m, chunk.to_vec(), Some(id)));
    }
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""id":"#) || super::has(msg, "test_request")
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if s(v, "method") == Some("subscription") {
        let params = v.get("params").unwrap_or(&Value::Null);
        return Signal::Data(s(params, "channel").map(str::to_owned));
    }
    if s(v, "method") == Some("heartbeat") {
        let params = v.get("params").unwrap_or(&Value::Null);
        if s(params, "type") == Some("test_request") {
            return Signal::Reply(
                json!({"jsonrpc": "2.0", "id": 9_000_000_001u64, "method": "public/test", "params": {}})
                    .to_string(),
            );
        }
        return Signal::Other;
    }
    let id = id_of(v, "id");
    if let Some(e) = v.get("error") {
        return Signal::Reject {
            id,
            keys: Vec::new(),
            reason: s(e, "message").map_or_else(|| reason(e), str::to_owned),
        };
    }
    match v.get("result") {
        Some(Value::Array(chans)) => Signal::Ack {
            id,
            keys: chans
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            complete: true,
        },
        _ => Signal::Other,
    }
}
