//! Upbit quotation (`wss://api.upbit.com/websocket/v1`): topics `type:CODE` (`trade:KRW-BTC`,
//! `orderbook:KRW-BTC`, `candle.1m:KRW-BTC`), all of a connection's topics in ONE request
//! `[{"ticket":…},{"type":"trade","codes":[…]},…,{"format":"DEFAULT"}]` (a new request replaces
//! the connection's subscriptions, so they are never split over messages). No ack; data is JSON
//! in binary frames (`{"type":"trade","code":"KRW-BTC",…}`), errors are
//! `{"error":{"name":"INVALID_PARAM","message":"…"}}`, the answer to a `PING` text is
//! `{"status":"UP"}` (<https://docs.upbit.com/kr/reference/websocket-guide>,
//! <https://docs.upbit.com/reference/connection>).
//!
//! Binary frames are read as text: in steady state only the ones with `"error"` or `"status"`
//! in them are parsed, as for any text message.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::{
    Binary, Outgoing, Protocol, Signal, Topic, group_by_channel, parsed, s, symbol_of, take_id,
};

pub(super) const PROTOCOL: Protocol = Protocol {
    check: super::channel_colon_symbol,
    key,
    subscribe,
    needs_look,
    classify,
    binary,
};

/// `orderbook:KRW-BTC.5` (five units) delivers as `orderbook` of `KRW-BTC`.
fn key(topic: &str) -> String {
    match topic.split_once(':') {
        Some(("orderbook", code)) => {
            format!(
                "orderbook:{}",
                code.split_once('.').map_or(code, |(c, _)| c)
            )
        }
        _ => topic.to_owned(),
    }
}

/// Every topic in one request, whatever `per_msg` says: a second request would replace the
/// first one's subscriptions.
fn subscribe(topics: &[Topic], _per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let mut request = vec![json!({"ticket": format!("wsrec-{}", take_id(next_id))})];
    for (channel, group) in group_by_channel(topics) {
        let codes: Vec<&str> = group.iter().map(|t| symbol_of(t)).collect();
        request.push(json!({"type": channel, "codes": codes}));
    }
    request.push(json!({"format": "DEFAULT"}));
    vec![Outgoing::new(&Value::Array(request), topics.to_vec(), None)]
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""error""#) || super::has(msg, r#""status""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if let Some(e) = v.get("error") {
        return Signal::Reject {
            id: None,
            keys: Vec::new(),
            reason: format!(
                "{}: {}",
                s(e, "name").unwrap_or("error"),
                s(e, "message").unwrap_or("")
            ),
        };
    }
    match (s(v, "type"), s(v, "code")) {
        (Some(t), Some(c)) => Signal::Data(Some(format!("{t}:{c}"))),
        _ => Signal::Other,
    }
}

/// JSON in a binary frame: read as text.
fn binary(frame: &[u8], _look: bool) -> Binary<'_> {
    Binary::Text(Cow::Borrowed(frame))
}

#[cfg(test)]
mod tests {
    use super::super::{
        Family, binary as read_binary, classify, needs_look, subscribe_messages, topic_key,
    };
    use super::*;

    #[test]
    fn one_request_for_every_topic() {
        let topics: Vec<String> = [
            "trade:KRW-BTC",
            "orderbook:KRW-BTC",
            "trade:KRW-ETH",
            "candle.1m:KRW-BTC",
        ]
        .map(str::to_owned)
        .to_vec();
        let m = subscribe_messages(Family::Upbit, &topics, 1, &mut 1);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].text,
            r#"[{"ticket":"wsrec-1"},{"type":"trade","codes":["KRW-BTC","KRW-ETH"]},{"type":"orderbook","codes":["KRW-BTC"]},{"type":"candle.1m","codes":["KRW-BTC"]},{"format":"DEFAULT"}]"#
        );
        assert_eq!(m[0].topics, topics);
        assert_eq!(
            topic_key(Family::Upbit, "orderbook:KRW-BTC.5"),
            "orderbook:KRW-BTC"
        );
    }

    #[test]
    fn data_errors_and_status_in_binary_frames() {
        let read = |f: &str| match read_binary(Family::Upbit, f.as_bytes(), true) {
            Binary::Text(t) => classify(Family::Upbit, &t),
            other => panic!("{other:?}"),
        };
        // docs.upbit.com's trade example (DEFAULT format).
        let trade = r#"{"type":"trade","code":"KRW-BTC","timestamp":1676965262177,"trade_date":"2023-02-21","trade_time":"07:41:02","trade_timestamp":1676965262139,"trade_price":31883000.00000000,"trade_volume":0.03231211,"ask_bid":"ASK","prev_closing_price":31909000.00000000,"change":"FALL","change_price":26000.00000000,"sequential_id":1676965262139000,"best_ask_price":31884000,"best_ask_size":0.4,"best_bid_price":31883000,"best_bid_size":0.1,"stream_type":"REALTIME"}"#;
        assert_eq!(read(trade), Signal::Data(Some("trade:KRW-BTC".into())));
        assert!(!needs_look(Family::Upbit, trade.as_bytes()));
        assert_eq!(
            read(r#"{"error":{"name":"INVALID_PARAM","message":"지원하지 않는 타입입니다."}}"#),
            Signal::Reject {
                id: None,
                keys: vec![],
                reason: "INVALID_PARAM: 지원하지 않는 타입입니다.".into()
            }
        );
        assert_eq!(read(r#"{"status":"UP"}"#), Signal::Other);
        assert!(needs_look(Family::Upbit, br#"{"status":"UP"}"#));
    }
}
