//! Crypto.com Exchange v1 market data: topics are Crypto.com's own channel names,
//! `trade.BTCUSD-PERP`, `ticker.BTC_USDT`, `book.BTCUSD-PERP.50` (depth 10 or 50 after the
//! instrument), `candlestick.1m.BTCUSD-PERP` (interval before it). They are subscribed with
//! `{"id","method":"subscribe","params":{"channels":[…]},"nonce"}`; books as
//! `SNAPSHOT_AND_UPDATE` (a `book` snapshot, then `book.update` deltas with `u`/`pu` sequence
//! numbers for gap checks). Data comes as `{"id":-1,"method":"subscribe","code":0,"result":
//! {"subscription":"trade.BTCUSD-PERP",…}}`, its `subscription` being the topic; an answer to
//! our request carries our `id`, a refusal a non-zero `code`. Every 30 s the server sends
//! `public/heartbeat` with an id, which must be answered with `public/respond-heartbeat` and the
//! same id within 5 s, or the connection is closed.
//! Sources: <https://exchange-docs.crypto.com/exchange/v1/rest-ws/index.html> (websocket
//! heartbeats, subscriptions, book.{instrument_name}.{depth}), ccxt `ts/src/pro/cryptocom.ts`
//! (v1 frames, heartbeat answer, book.update), tardis-dev `src/realtimefeeds/cryptocom.ts`.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, id_of, parsed, s, take_id};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

fn check(topic: &str) -> Result<(), String> {
    let parts: Vec<&str> = topic.split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(
            "expected channel.INSTRUMENT, e.g. trade.BTCUSD-PERP, book.BTCUSD-PERP.50 or candlestick.1m.BTCUSD-PERP"
                .to_owned(),
        );
    }
    match parts[0] {
        "book" if parts.len() != 3 => Err(format!(
            "a book takes its depth after the instrument, e.g. book.{}.50 (10 or 50)",
            parts[1]
        )),
        "candlestick" if parts.len() != 3 => Err(format!(
            "a candlestick takes its interval before the instrument, e.g. candlestick.1m.{}",
            parts[parts.len() - 1]
        )),
        _ => Ok(()),
    }
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .chunks(per_msg)
        .map(|chunk| {
            let id = take_id(next_id);
            let mut params = json!({"channels": chunk});
            if chunk.iter().any(|t| t.starts_with("book.")) {
                // Deltas with sequence numbers rather than a full book every 100 ms.
                params["book_subscription_type"] = json!("SNAPSHOT_AND_UPDATE");
            }
            // The nonce, the request's time in milliseconds, is set when it is sent
            // ([`super::stamp`]).
            let m = json!({"id": id, "method": "subscribe", "params": params, "nonce": 0});
            Outgoing::new(&m, chunk.to_vec(), Some(id))
        })
        .collect()
}

/// Data frames all carry `"id":-1`; heartbeats, answers to our requests and refusals do not.
fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, "public/heartbeat") || !super::has(msg, r#""id":-1"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    let method = s(v, "method");
    if method == Some("public/heartbeat") {
        let answer = json!({"id": v.get("id").cloned().unwrap_or(Value::Null), "method": "public/respond-heartbeat"});
        return Signal::Reply(answer.to_string());
    }
    if method.is_some_and(|m| m != "subscribe") {
        // Answers to our heartbeat replies, unsubscribes.
        return Signal::Other;
    }
    let id = id_of(v, "id");
    let code = v.get("code").and_then(Value::as_i64).unwrap_or(0);
    if code != 0 {
        return Signal::Reject {
            id,
            keys: Vec::new(),
            reason: format!("code {code}: {}", s(v, "message").unwrap_or("refused")),
        };
    }
    match v.get("result").and_then(|r| s(r, "subscription")) {
        Some(sub) => Signal::Data(Some(sub.to_owned())),
        None if id.is_some() => Signal::Ack {
            id,
            keys: Vec::new(),
            complete: false,
        },
        None => Signal::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_messages_carry_ids_and_ask_books_for_deltas() {
        let topics = super::super::owned(&[
            "trade.BTCUSD-PERP",
            "book.BTCUSD-PERP.50",
            "ticker.ETH_USDT",
        ]);
        let m = subscribe(&topics, 2, &mut 1);
        let v: Vec<Value> = m
            .iter()
            .map(|m| {
                let v: Value = serde_json::from_str(&m.text).unwrap();
                v
            })
            .collect();
        assert_eq!(
            v,
            [
                json!({"id":1,"method":"subscribe","params":{"channels":["trade.BTCUSD-PERP","book.BTCUSD-PERP.50"],"book_subscription_type":"SNAPSHOT_AND_UPDATE"},"nonce":0}),
                json!({"id":2,"method":"subscribe","params":{"channels":["ticker.ETH_USDT"]},"nonce":0}),
            ]
        );
        assert_eq!(m[1].id, Some(2));
        assert_eq!(m[1].topics, ["ticker.ETH_USDT"]);
        // The nonce is the time the message is sent, in milliseconds.
        assert_eq!(
            super::super::stamp(
                crate::net::venue::Family::Cryptocom,
                &m[1].text,
                1_795_517_990_500_000_000
            )
            .unwrap(),
            r#"{"id":2,"method":"subscribe","params":{"channels":["ticker.ETH_USDT"]},"nonce":1795517990500}"#
        );
    }

    #[test]
    fn topic_shapes() {
        for ok in [
            "trade.BTCUSD-PERP",
            "book.BTCUSD-PERP.10",
            "candlestick.1m.BTC_USDT",
            "ticker.BTC_USDT",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        assert!(check("trade").is_err());
        assert!(check("trade.").is_err());
        assert!(
            check("book.BTCUSD-PERP")
                .unwrap_err()
                .contains("book.BTCUSD-PERP.50")
        );
        assert!(
            check("candlestick.BTCUSD-PERP")
                .unwrap_err()
                .contains("candlestick.1m.BTCUSD-PERP")
        );
    }

    #[test]
    fn heartbeats_are_answered_with_their_id() {
        let hb = br#"{"id":1587523073344,"method":"public/heartbeat","code":0}"#;
        assert!(needs_look(hb));
        assert_eq!(
            classify(hb),
            Signal::Reply(r#"{"id":1587523073344,"method":"public/respond-heartbeat"}"#.into())
        );
        assert_eq!(
            classify(br#"{"id":1587523073344,"method":"public/respond-heartbeat","code":0}"#),
            Signal::Other
        );
    }

    fn data(k: &str) -> Signal {
        Signal::Data(Some(k.to_owned()))
    }

    #[test]
    fn acks_refusals_and_data_of_every_channel() {
        assert_eq!(
            classify(br#"{"id":1,"method":"subscribe","code":0}"#),
            Signal::Ack {
                id: Some(1),
                keys: vec![],
                complete: false
            }
        );
        // A refusal, as ccxt quotes it (ts/src/pro/cryptocom.ts, handleErrorMessage).
        assert_eq!(
            classify(
                br#"{"id":2,"code":10004,"method":"subscribe","message":"invalid channel {\"channels\":[\"trade.BTCUSD-PERPX\"]}"}"#
            ),
            Signal::Reject {
                id: Some(2),
                keys: vec![],
                reason: r#"code 10004: invalid channel {"channels":["trade.BTCUSD-PERPX"]}"#.into()
            }
        );
        let frames = [
            (
                r#"{"id":-1,"method":"subscribe","code":0,"result":{"instrument_name":"BTCUSD-PERP","subscription":"trade.BTCUSD-PERP","channel":"trade","data":[{"d":"4611686018455979970","t":1718946421218,"p":"64810.2","q":"0.0010","s":"BUY","i":"BTCUSD-PERP","m":"2"}]}}"#,
                "trade.BTCUSD-PERP",
            ),
            (
                r#"{"id":-1,"method":"subscribe","code":0,"result":{"instrument_name":"BTC_USDT","subscription":"book.BTC_USDT.50","channel":"book.update","depth":50,"data":[{"update":{"asks":[["43755.46","0.10000","1"]],"bids":[["43737.46","0.14096","1"]]},"t":1704484068898,"tt":1704484068892,"u":78795598253024,"pu":78795598162080,"cs":-781431132}]}}"#,
                "book.BTC_USDT.50",
            ),
            (
                r#"{"id":-1,"method":"subscribe","code":0,"result":{"instrument_name":"BTC_USDT","subscription":"candlestick.1m.BTC_USDT","channel":"candlestick","interval":"1m","data":[{"o":"64810.2","h":"64820.0","l":"64800.1","c":"64815.5","v":"1.2","t":1718946420000}]}}"#,
                "candlestick.1m.BTC_USDT",
            ),
        ];
        for (frame, k) in frames {
            assert_eq!(classify(frame.as_bytes()), data(k), "{frame}");
            assert!(!needs_look(frame.as_bytes()), "{frame}");
        }
        assert!(needs_look(br#"{"id":1,"method":"subscribe","code":0}"#));
    }
}
