//! dYdX v4 indexer: topics `channel:ID` as the indexer names them (`v4_trades:BTC-USD`,
//! `v4_orderbook:BTC-USD`, `v4_candles:BTC-USD/1MIN`), and the market-wide channels alone
//! (`v4_markets`, `v4_block_height`); one `subscribe` message per topic. The answer,
//! `"type":"subscribed"`, carries the channel's initial contents; updates come as
//! `channel_data` (or `channel_batch_data` for a batched subscription) naming channel and id;
//! errors as `"type":"error"` with the channel and id in their words. Every message has a
//! per-connection `message_id`.
//!
//! Sources: <https://docs.dydx.exchange/api_integration-indexer/indexer_websocket>, the indexer's
//! socks service (dydxprotocol/v4-chain `indexer/services/socks/src/helpers/message.ts` for
//! the message shapes, `lib/subscription.ts` for the errors, `config.ts` for the limits).

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    binary: super::binary_is_data,
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
};

/// Channels that take no id: one subscription covers every market.
const MARKET_WIDE: [&str; 2] = ["v4_markets", "v4_block_height"];

fn check(topic: &str) -> Result<(), String> {
    if let Some(c) = MARKET_WIDE.iter().find(|c| topic.starts_with(**c)) {
        return if topic == *c {
            Ok(())
        } else {
            Err(format!(
                "{c} covers every market and takes no id: write {c}"
            ))
        };
    }
    super::two(topic, ':', "channel:MARKET, e.g. v4_trades:BTC-USD")?;
    if topic.starts_with("v4_candles:") && !topic.contains('/') {
        return Err("candles need a resolution, e.g. v4_candles:BTC-USD/1MIN".to_owned());
    }
    Ok(())
}

fn subscribe(topics: &[Topic], _per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .iter()
        .map(|t| {
            let m = match t.split_once(':') {
                Some((channel, id)) => json!({"type": "subscribe", "channel": channel, "id": id}),
                None => json!({"type": "subscribe", "channel": t}),
            };
            Outgoing::new(&m, vec![t.clone()], None)
        })
        .collect()
}

/// Updates are `"type":"channel_data"` or `"type":"channel_batch_data"`, written first.
fn needs_look(msg: &[u8]) -> bool {
    !super::has(msg, r#""type":"channel_"#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

/// The topic key of a channel and id as the indexer writes them.
fn key(channel: &str, id: Option<&str>) -> String {
    match id {
        Some(id) if !MARKET_WIDE.contains(&channel) => format!("{channel}:{id}"),
        _ => channel.to_owned(),
    }
}

fn signal(v: &Value) -> Signal {
    let topic = || s(v, "channel").map(|c| key(c, s(v, "id")));
    match s(v, "type") {
        Some("channel_data" | "channel_batch_data") => Signal::Data(topic()),
        Some("subscribed") => Signal::Ack {
            id: None,
            keys: topic().into_iter().collect(),
            complete: false,
        },
        Some("error") => {
            let words = s(v, "message").unwrap_or("").to_owned();
            Signal::Reject {
                id: None,
                keys: named_topic(&words).into_iter().collect(),
                reason: words,
            }
        }
        _ => Signal::Other,
    }
}

/// The topic an error names as `(channel-id)`: `Invalid subscription id for channel:
/// (v4_trades-FOO-USD)`.
fn named_topic(words: &str) -> Option<String> {
    let inner = words.split_once('(')?.1.split_once(')')?.0;
    let (channel, id) = inner.split_once('-').unwrap_or((inner, ""));
    channel
        .starts_with("v4_")
        .then(|| key(channel, (!id.is_empty()).then_some(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::venue::Family;
    use crate::net::venue::protocol::{classify, needs_look, parse_topic, subscribe_messages};

    fn c(msg: &str) -> Signal {
        classify(Family::Dydx, msg.as_bytes())
    }

    #[test]
    fn one_subscribe_message_per_topic() {
        let topics: Vec<String> = ["v4_trades:BTC-USD", "v4_candles:ETH-USD/1MIN", "v4_markets"]
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        let texts: Vec<String> = subscribe_messages(Family::Dydx, &topics, 10, &mut 1)
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert_eq!(
            texts,
            [
                r#"{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}"#,
                r#"{"type":"subscribe","channel":"v4_candles","id":"ETH-USD/1MIN"}"#,
                r#"{"type":"subscribe","channel":"v4_markets"}"#,
            ]
        );
        assert!(parse_topic(Family::Dydx, "v4_markets:BTC-USD").is_err());
        assert!(parse_topic(Family::Dydx, "v4_candles:BTC-USD").is_err());
        assert!(parse_topic(Family::Dydx, "v4_orderbook").is_err());
        assert!(parse_topic(Family::Dydx, "v4_block_height").is_ok());
    }

    #[test]
    fn acks_data_and_errors_name_their_topic() {
        // Shapes of the socks service's helpers/message.ts and the indexer websocket docs.
        assert_eq!(
            c(
                r#"{"type":"connected","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":0}"#
            ),
            Signal::Other
        );
        assert_eq!(
            c(
                r#"{"type":"subscribed","connection_id":"004a1efa","message_id":1,"channel":"v4_trades","id":"BTC-USD","contents":{"trades":[{"id":"02a7c2e70000000200000002","size":"0.0012","price":"97480","side":"BUY","createdAt":"2024-12-05T13:00:01.563Z","type":"LIMIT"}]}}"#
            ),
            Signal::Ack {
                id: None,
                keys: vec!["v4_trades:BTC-USD".into()],
                complete: false
            }
        );
        assert_eq!(
            c(
                r#"{"type":"subscribed","connection_id":"004a1efa","message_id":2,"channel":"v4_markets","contents":{"markets":{}}}"#
            ),
            Signal::Ack {
                id: None,
                keys: vec!["v4_markets".into()],
                complete: false
            }
        );
        for (frame, key) in [
            (
                r#"{"type":"channel_data","connection_id":"004a1efa","message_id":3,"id":"BTC-USD","channel":"v4_orderbook","version":"1.0.0","contents":{"bids":[["97450","0.5"]]}}"#,
                "v4_orderbook:BTC-USD",
            ),
            (
                r#"{"type":"channel_batch_data","connection_id":"004a1efa","message_id":4,"id":"BTC-USD","channel":"v4_orderbook","version":"1.0.0","contents":[{"asks":[["97460","0"]]},{"bids":[["97450","0.4"]]}]}"#,
                "v4_orderbook:BTC-USD",
            ),
            (
                r#"{"type":"channel_data","connection_id":"004a1efa","message_id":5,"id":"BTC-USD/1MIN","channel":"v4_candles","version":"1.0.0","contents":{"resolution":"1MIN","id":"BTC-USD","ticker":"BTC-USD","low":"97400","high":"97500","open":"97450","close":"97480","baseTokenVolume":"1.2","usdVolume":"116976","trades":12,"startingOpenInterest":"560.1","startedAt":"2024-12-05T13:00:00.000Z"}}"#,
                "v4_candles:BTC-USD/1MIN",
            ),
            (
                r#"{"type":"channel_data","connection_id":"004a1efa","message_id":6,"channel":"v4_markets","version":"1.0.0","contents":{"oraclePrices":{"BTC-USD":{"oraclePrice":"97452.1","effectiveAt":"2024-12-05T13:00:01.000Z","effectiveAtHeight":"25000000","marketId":0}}}}"#,
                "v4_markets",
            ),
        ] {
            assert_eq!(c(frame), Signal::Data(Some(key.to_owned())), "{frame}");
            assert!(!needs_look(Family::Dydx, frame.as_bytes()), "{frame}");
        }
        assert_eq!(
            c(
                r#"{"type":"error","message":"Invalid subscription id for channel: (v4_trades-FOO-USD)","connection_id":"004a1efa","message_id":7}"#
            ),
            Signal::Reject {
                id: None,
                keys: vec!["v4_trades:FOO-USD".into()],
                reason: "Invalid subscription id for channel: (v4_trades-FOO-USD)".into()
            }
        );
        assert!(matches!(
            c(r#"{"type":"error","message":"Internal error, could not fetch data for subscription: v4_trades.","connection_id":"a","message_id":8}"#),
            Signal::Reject { keys, .. } if keys.is_empty()
        ));
        for control in [
            r#"{"type":"connected","connection_id":"a","message_id":0}"#,
            r#"{"type":"subscribed","connection_id":"a","message_id":1,"channel":"v4_markets","contents":{}}"#,
            r#"{"type":"error","message":"x","connection_id":"a","message_id":2}"#,
        ] {
            assert!(needs_look(Family::Dydx, control.as_bytes()), "{control}");
        }
    }
}
