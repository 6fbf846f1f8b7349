//! OKX v5: topics `channel:instId` (`books:BTC-USDT`), subscribed as `{channel, instId}`
//! arguments; acks, errors and notices come as `event` messages, data names its `arg`.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    check: super::channel_colon_symbol,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for chunk in topics.chunks(per_msg) {
        let args: Vec<Value> = chunk
            .iter()
            .map(|t| {
                let (c, s) = t.split_once(':').unwrap_or((t, ""));
                json!({"channel": c, "instId": s})
            })
            .collect();
        let m = json!({"op": "subscribe", "args": args});
        out.push(Outgoing::new(&m, chunk.to_vec(), None));
    }
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""event":"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn key(arg: &Value) -> Option<String> {
    Some(format!("{}:{}", s(arg, "channel")?, s(arg, "instId")?))
}

fn signal(v: &Value) -> Signal {
    match s(v, "event") {
        Some("subscribe") => Signal::Ack {
            id: None,
            keys: v.get("arg").and_then(key).into_iter().collect(),
            complete: false,
        },
        Some("error") => Signal::Reject {
            id: None,
            keys: v.get("arg").and_then(key).into_iter().collect(),
            reason: format!(
                "{} {}",
                s(v, "code").unwrap_or(""),
                s(v, "msg").unwrap_or("")
            ),
        },
        Some("notice") if s(v, "code") == Some("64008") => Signal::Reconnect(format!(
            "notice 64008: {}",
            s(v, "msg").unwrap_or("service upgrade")
        )),
        Some(_) => Signal::Other,
        None => Signal::Data(v.get("arg").and_then(key)),
    }
}
