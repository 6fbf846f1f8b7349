//! Bitget v2 public: topics `INSTTYPE/channel:instId`, e.g. `SPOT/trade:BTCUSDT`,
//! `USDT-FUTURES/books5:BTCUSDT`, `COIN-FUTURES/ticker:BTCUSD` (instType is one of SPOT,
//! USDT-FUTURES, COIN-FUTURES, USDC-FUTURES), subscribed as `{instType, channel, instId}`
//! arguments of `{"op":"subscribe","args":[…]}`. Acks (`"event":"subscribe"`) and errors
//! (`"event":"error"`, `code`, `msg`) name their `arg`; data frames carry `action`
//! (`snapshot`/`update`) and the same `arg`; books add `seq` and `checksum`.
//! Sources: <https://www.bitget.com/api-doc/common/websocket-intro>,
//! <https://www.bitget.com/api-doc/spot/websocket/public/Trades-Channel> (and the other channel
//! pages), ccxt `ts/src/pro/bitget.ts`.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

/// The instType, channel and instId of a topic.
fn parts(topic: &str) -> Option<(&str, &str, &str)> {
    let (inst_type, rest) = topic.split_once('/')?;
    let (channel, inst_id) = rest.split_once(':')?;
    Some((inst_type, channel, inst_id))
}

fn check(topic: &str) -> Result<(), String> {
    match parts(topic) {
        Some((t, c, i)) if !t.is_empty() && !c.is_empty() && !i.is_empty() => Ok(()),
        _ => Err(
            "expected INSTTYPE/channel:instId, e.g. SPOT/trade:BTCUSDT or USDT-FUTURES/books5:BTCUSDT"
                .to_owned(),
        ),
    }
}

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .chunks(per_msg)
        .map(|chunk| {
            let args: Vec<Value> = chunk
                .iter()
                .filter_map(|t| parts(t))
                .map(|(t, c, i)| json!({"instType": t, "channel": c, "instId": i}))
                .collect();
            Outgoing::new(
                &json!({"op": "subscribe", "args": args}),
                chunk.to_vec(),
                None,
            )
        })
        .collect()
}

/// Acks, errors and notices are `event` messages; data never has an `event`.
fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""event":"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

/// The topic key an `arg` names.
fn key(arg: &Value) -> Option<String> {
    Some(format!(
        "{}/{}:{}",
        s(arg, "instType")?,
        s(arg, "channel")?,
        s(arg, "instId")?
    ))
}

fn signal(v: &Value) -> Signal {
    let arg = v.get("arg").and_then(key);
    match s(v, "event") {
        Some("subscribe") => Signal::Ack {
            id: None,
            keys: arg.into_iter().collect(),
            complete: false,
        },
        Some("error") => Signal::Reject {
            id: None,
            keys: arg.into_iter().collect(),
            reason: format!(
                "{} {}",
                v.get("code").map_or(String::new(), super::reason),
                s(v, "msg").unwrap_or("")
            ),
        },
        Some(_) => Signal::Other,
        None => Signal::Data(arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_messages_name_every_argument() {
        let topics = super::super::owned(&[
            "SPOT/trade:BTCUSDT",
            "USDT-FUTURES/books5:ETHUSDT",
            "SPOT/ticker:SOLUSDT",
        ]);
        let m = subscribe(&topics, 2, &mut 1);
        assert_eq!(
            m.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            [
                r#"{"op":"subscribe","args":[{"instType":"SPOT","channel":"trade","instId":"BTCUSDT"},{"instType":"USDT-FUTURES","channel":"books5","instId":"ETHUSDT"}]}"#,
                r#"{"op":"subscribe","args":[{"instType":"SPOT","channel":"ticker","instId":"SOLUSDT"}]}"#
            ]
        );
        assert_eq!(m[1].topics, ["SPOT/ticker:SOLUSDT"]);
        assert_eq!(m[0].id, None);
    }

    #[test]
    fn topic_shapes() {
        assert!(check("SPOT/trade:BTCUSDT").is_ok());
        assert!(check("COIN-FUTURES/candle1m:BTCUSD").is_ok());
        assert!(check("trade:BTCUSDT").is_err());
        assert!(check("SPOT/trade").is_err());
        assert!(check("/trade:BTCUSDT").is_err());
        assert!(check("SPOT/:BTCUSDT").is_err());
    }

    fn data(k: &str) -> Signal {
        Signal::Data(Some(k.to_owned()))
    }

    #[test]
    fn acks_errors_and_data_of_every_channel() {
        // Shapes from Bitget's v2 channel pages (https://www.bitget.com/api-doc/spot/websocket/public/...).
        assert_eq!(
            classify(br#"{"event":"subscribe","arg":{"instType":"SPOT","channel":"ticker","instId":"BTCUSDT"}}"#),
            Signal::Ack {
                id: None,
                keys: vec!["SPOT/ticker:BTCUSDT".into()],
                complete: false
            }
        );
        assert_eq!(
            classify(br#"{"event":"error","arg":{"instType":"SPOT","channel":"ticker","instId":"BTCUSDT1"},"code":30001,"msg":"instType:SPOT,channel:ticker,instId:BTCUSDT1 doesn't exist","op":"subscribe"}"#),
            Signal::Reject {
                id: None,
                keys: vec!["SPOT/ticker:BTCUSDT1".into()],
                reason: "30001 instType:SPOT,channel:ticker,instId:BTCUSDT1 doesn't exist".into()
            }
        );
        assert_eq!(classify(b"pong"), Signal::Other);
        let frames = [
            (
                r#"{"action":"snapshot","arg":{"instType":"SPOT","channel":"trade","instId":"BTCUSDT"},"data":[{"ts":"1695709835822","price":"26293.4","size":"0.0013","side":"buy","tradeId":"1106286315521622017"}],"ts":1695709835822}"#,
                "SPOT/trade:BTCUSDT",
            ),
            (
                r#"{"action":"snapshot","arg":{"instType":"SPOT","channel":"books5","instId":"BTCUSDT"},"data":[{"asks":[["26274.9","0.0009"]],"bids":[["26274.8","0.0009"]],"checksum":0,"seq":123,"ts":"1695710946294"}],"ts":1695710946294}"#,
                "SPOT/books5:BTCUSDT",
            ),
            (
                r#"{"action":"update","arg":{"instType":"USDT-FUTURES","channel":"books","instId":"BTCUSDT"},"data":[{"asks":[["27000.5","8.760"]],"bids":[["27000.0","2.710"]],"checksum":-1281283372,"seq":1233,"ts":"1695716059516"}],"ts":1695716059516}"#,
                "USDT-FUTURES/books:BTCUSDT",
            ),
            (
                r#"{"action":"snapshot","arg":{"instType":"SPOT","channel":"candle1m","instId":"BTCUSDT"},"data":[["1695685500000","27000","27000.5","27000","27000.5","0.057","1539.0155","1539.0155"]],"ts":1695715462250}"#,
                "SPOT/candle1m:BTCUSDT",
            ),
        ];
        for (frame, k) in frames {
            assert_eq!(classify(frame.as_bytes()), data(k), "{frame}");
            assert!(!needs_look(frame.as_bytes()), "{frame}");
        }
        assert!(needs_look(br#"{"event":"error","code":30001}"#));
    }
}
