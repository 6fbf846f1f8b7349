//! Kraken spot v2: topics `channel:SYMBOL` with an optional depth or interval after the channel
//! (`book.25:BTC/USD`, `ohlc.5:BTC/USD`), subscribed per channel with a `req_id`.

use serde_json::{Value, json};

use super::{
    Outgoing, Protocol, Signal, Topic, data_of, find_str, group_by_channel, id_of, parsed, s,
    split_param, symbol_of, take_id,
};

pub(super) const PROTOCOL: Protocol = Protocol {
    check: super::channel_colon_symbol,
    key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

/// Data does not repeat the book depth: `book.25:BTC/USD` is recognised as `book:BTC/USD`.
fn key(topic: &str) -> String {
    let (channel, symbol) = topic.split_once(':').unwrap_or((topic, ""));
    let base = channel.split_once('.').map_or(channel, |(b, _)| b);
    format!("{base}:{symbol}")
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for (channel, group) in group_by_channel(topics) {
        let (name, param) = split_param(&channel);
        // `instrument` lists every pair on one subscription and takes no symbol
        // (docs.kraken.com, spot-websocket-v2/instrument): one message for all its topics.
        let whole = name == "instrument";
        for chunk in group.chunks(if whole { group.len() } else { per_msg }) {
            let mut params = json!({"channel": name});
            if !whole {
                let symbols: Vec<&str> = chunk.iter().map(|t| symbol_of(t)).collect();
                params["symbol"] = json!(symbols);
            }
            if let Some(p) = param.and_then(|p| p.parse::<u64>().ok()) {
                let field = if name == "ohlc" { "interval" } else { "depth" };
                params[field] = json!(p);
            }
            let id = take_id(next_id);
            let m = json!({"method": "subscribe", "params": params, "req_id": id});
            out.push(Outgoing::new(&m, chunk.to_vec(), Some(id)));
        }
    }
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""method":"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if let Some(method) = s(v, "method") {
        if method != "subscribe" {
            return Signal::Other;
        }
        let id = id_of(v, "req_id");
        let result = v.get("result").unwrap_or(&Value::Null);
        let key = match (s(result, "channel"), s(result, "symbol").or(s(v, "symbol"))) {
            (Some(c), Some(sym)) => vec![format!("{c}:{sym}")],
            _ => Vec::new(),
        };
        if v.get("success").and_then(Value::as_bool) == Some(false) {
            return Signal::Reject {
                id,
                keys: key,
                reason: s(v, "error").unwrap_or("refused").to_owned(),
            };
        }
        return Signal::Ack {
            id,
            keys: key,
            complete: false,
        };
    }
    match s(v, "channel") {
        Some("heartbeat" | "status" | "pong") | None => Signal::Other,
        // The instrument channel sends every pair at once: it speaks for each one it lists.
        Some("instrument") => {
            let pairs = v
                .get("data")
                .and_then(|d| d.get("pairs"))
                .and_then(Value::as_array);
            data_of(
                pairs
                    .into_iter()
                    .flatten()
                    .filter_map(|p| s(p, "symbol"))
                    .map(|sym| format!("instrument:{sym}"))
                    .collect(),
            )
        }
        Some(c) => {
            let data = v.get("data").unwrap_or(&Value::Null);
            Signal::Data(find_str(data, "symbol").map(|sym| format!("{c}:{sym}")))
        }
    }
}
