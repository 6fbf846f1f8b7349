//! Bybit v5 public streams: topics `channel.SYMBOL` (`publicTrade.BTCUSDT`), subscribed in
//! batches with a `req_id` that the venue echoes; data names its topic in `topic`.
//!
//! The option stream answers a subscription its own way: a `"type":"COMMAND_RESP"` message
//! listing `successTopics` and `failTopics`, without `op` (roq-trading's and JKorf's Bybit
//! clients parse it so; <https://bybit-exchange.github.io/docs/v5/ws/connect>), and its pong is
//! `{"op":"pong","args":[…]}`, which the `"pong"` check of the preset's keepalive matches.

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
    super::has(msg, r#""op":"#) || super::has(msg, "COMMAND_RESP")
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if let Some(topic) = s(v, "topic") {
        return Signal::Data(Some(topic.to_owned()));
    }
    if s(v, "type") == Some("COMMAND_RESP") {
        return command_resp(v);
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

/// The option stream's answer to a subscribe message: refused topics in `data.failTopics`,
/// confirmed ones in `data.successTopics`.
fn command_resp(v: &Value) -> Signal {
    let id = id_of(v, "req_id");
    let data = v.get("data").unwrap_or(&Value::Null);
    let list = |key: &str| -> Vec<String> {
        data.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let failed = list("failTopics");
    if !failed.is_empty() || v.get("success").and_then(Value::as_bool) == Some(false) {
        let why = s(v, "ret_msg")
            .filter(|m| !m.is_empty())
            .unwrap_or("in failTopics");
        return Signal::Reject {
            id,
            reason: format!("{why}: {}", failed.join(", ")),
            keys: failed,
        };
    }
    Signal::Ack {
        id,
        keys: list("successTopics"),
        complete: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(msg: &str) -> Signal {
        classify(msg.as_bytes())
    }

    /// The option stream's acknowledgement, as roq-trading's Bybit test data has it.
    const OPTION_ACK: &str = r#"{"success":true,"conn_id":"461834fffe84142f-00000001-000c2ffe-1fd4e17e7fe53c8b-2c14741e","data":{"failTopics":[],"successTopics":["orderbook.25.BTC-21APR23-28500-P","orderbook.25.BTC-21APR23-27500-C"]},"type":"COMMAND_RESP"}"#;

    #[test]
    fn option_acks_name_their_topics_and_refusals_name_theirs() {
        assert_eq!(
            c(OPTION_ACK),
            Signal::Ack {
                id: None,
                keys: vec![
                    "orderbook.25.BTC-21APR23-28500-P".into(),
                    "orderbook.25.BTC-21APR23-27500-C".into()
                ],
                complete: false
            }
        );
        let refused = r#"{"success":true,"conn_id":"c","req_id":"4","data":{"failTopics":["orderbook.50.BTC-21APR23-28500-P"],"successTopics":["tickers.BTC-21APR23-28500-P"]},"type":"COMMAND_RESP"}"#;
        assert!(matches!(
            c(refused),
            Signal::Reject { id: Some(4), keys, reason }
                if keys == ["orderbook.50.BTC-21APR23-28500-P"] && reason.contains("orderbook.50")
        ));
        // Both shapes of the answer pass the cheap test; option data does not.
        assert!(needs_look(OPTION_ACK.as_bytes()));
        assert!(needs_look(
            br#"{"req_id":"","op":"pong","args":["1675418560633"],"conn_id":"c"}"#
        ));
        assert_eq!(
            c(r#"{"req_id":"","op":"pong","args":["1675418560633"],"conn_id":"c"}"#),
            Signal::Other
        );
        let trade = r#"{"id":"publicTrade.BTC-1747035962918-1","topic":"publicTrade.BTC","ts":1747035962918,"data":[{"p":"2030","v":"0.01","i":"6fc1d1e5-ccd2-5c0e-a5a7-5e22ec4b4c12","T":1747035962914,"BT":false,"s":"BTC-13MAY25-104000-C","S":"Sell","mP":"2002.3","iP":"103600","mIv":"0.4","iv":"0.43","seq":17}]}"#;
        assert!(!needs_look(trade.as_bytes()));
        assert_eq!(c(trade), Signal::Data(Some("publicTrade.BTC".into())));
    }
}
