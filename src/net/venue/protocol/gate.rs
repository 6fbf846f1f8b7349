//! Gate API v4 (spot, and USDT-margined perpetual futures on the same protocol).
//!
//! Topics are `channel:SYMBOL` with the channel's other parameters after the symbol, each after
//! a colon: `spot.trades:BTC_USDT`, `spot.order_book_update:BTC_USDT:100ms`,
//! `spot.order_book:BTC_USDT:20:1000ms`, `futures.order_book_update:BTC_USDT:100ms:20`,
//! `spot.candlesticks:BTC_USDT:1m`. The channel is Gate's own name (its `spot.`/`futures.`
//! prefix says the market). A subscribe message is `{"time","id","channel","event":"subscribe",
//! "payload"}`: topics without parameters of one channel share a message (their symbols are the
//! payload); a topic with parameters gets its own, the payload being the symbol then the
//! parameters, except candlesticks, which Gate takes as `[interval, symbol]`.
//!
//! Gate answers each request with its `id`: `"result":{"status":"success"}` or
//! `"error":{"code":2,"message":"unknown currency pair …"}`. Data frames (`"event":"update"`, or
//! `"all"` for full books) name the symbol in `result` (an object or an array of them) under
//! `s`, `currency_pair` or `contract`; candlesticks name interval and symbol in `n`
//! (`1m_BTC_USDT`). Books carry `U`/`u` (first and last update id) for gap checks.
//! Sources: <https://www.gate.com/docs/developers/apiv4/ws/en/> (spot),
//! <https://www.gate.com/docs/developers/futures/ws/en/> (futures), ccxt `ts/src/pro/gate.ts`
//! (message shapes, `id` echo), cryptofeed `cryptofeed/exchanges/gateio.py`.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, data_of, id_of, parsed, s, take_id};
#[cfg(test)]
use crate::net::venue::Family;

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

/// The channel, the symbol and the parameters of a topic.
fn parts(topic: &str) -> (&str, &str, Vec<&str>) {
    let mut it = topic.split(':');
    let channel = it.next().unwrap_or("");
    let symbol = it.next().unwrap_or("");
    (channel, symbol, it.collect())
}

/// The symbol of an incremental book topic of `channel` (`spot.order_book_update:BTC_USDT:100ms`
/// → `BTC_USDT` for `spot.order_book_update`); `None` for other channels.
fn book_update_symbol(topic: &str, channel: &str) -> Option<String> {
    let (ch, symbol, _) = parts(topic);
    (ch == channel && !symbol.is_empty()).then(|| symbol.to_owned())
}

/// The currency pair of a `spot.order_book_update` topic, as the REST order book takes it.
pub fn spot_update_symbol(topic: &str) -> Option<String> {
    book_update_symbol(topic, "spot.order_book_update")
}

/// The contract of a `futures.order_book_update` topic, as the REST order book takes it.
pub fn futures_update_symbol(topic: &str) -> Option<String> {
    book_update_symbol(topic, "futures.order_book_update")
}

/// The first update ID (`result.U`) of an `order_book_update` message.
pub fn update_first_id(msg: &[u8]) -> Option<u64> {
    super::u64_field(msg, "U")
}

/// The order book ID (`id`, asked for with `with_id=true`) of a REST order book.
pub fn order_book_id(body: &[u8]) -> Option<u64> {
    super::u64_field(body, "id")
}

fn is_candles(channel: &str) -> bool {
    channel.ends_with(".candlesticks")
}

fn check(topic: &str) -> Result<(), String> {
    let (channel, symbol, params) = parts(topic);
    let shape = "channel:SYMBOL[:param...], e.g. spot.trades:BTC_USDT or spot.order_book_update:BTC_USDT:100ms";
    if !channel.contains('.') || symbol.is_empty() || params.iter().any(|p| p.is_empty()) {
        return Err(format!("expected {shape}"));
    }
    if is_candles(channel) && params.len() != 1 {
        return Err(format!(
            "candlesticks take one interval after the symbol, e.g. {channel}:BTC_USDT:1m"
        ));
    }
    Ok(())
}

/// Data names the symbol (and a candle's interval) but not a book's depth or frequency:
/// `spot.order_book_update:BTC_USDT:100ms` is recognised as `spot.order_book_update:BTC_USDT`.
fn key(topic: &str) -> String {
    let (channel, symbol, params) = parts(topic);
    match params.first() {
        Some(interval) if is_candles(channel) => format!("{channel}:{symbol}:{interval}"),
        _ => format!("{channel}:{symbol}"),
    }
}

/// A subscribe request. Its `time` (Gate asks for the request's time in seconds, within 60 s
/// of its clock) is set when it is sent ([`super::stamp`]).
fn request(channel: &str, payload: &[&str], id: u64) -> Value {
    json!({"time": 0, "id": id, "channel": channel, "event": "subscribe", "payload": payload})
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    // Topics without parameters, grouped by channel in first-seen order.
    let mut plain: Vec<(&str, Vec<&Topic>)> = Vec::new();
    for t in topics {
        let (channel, symbol, params) = parts(t);
        if params.is_empty() {
            match plain.iter_mut().find(|(c, _)| *c == channel) {
                Some((_, v)) => v.push(t),
                None => plain.push((channel, vec![t])),
            }
            continue;
        }
        let payload: Vec<&str> = if is_candles(channel) {
            vec![params[0], symbol]
        } else {
            std::iter::once(symbol).chain(params).collect()
        };
        let id = take_id(next_id);
        out.push(Outgoing::new(
            &request(channel, &payload, id),
            vec![t.clone()],
            Some(id),
        ));
    }
    for (channel, group) in plain {
        for chunk in group.chunks(per_msg) {
            let symbols: Vec<&str> = chunk.iter().map(|t| parts(t).1).collect();
            let id = take_id(next_id);
            out.push(Outgoing::new(
                &request(channel, &symbols, id),
                chunk.iter().map(|t| (*t).clone()).collect(),
                Some(id),
            ));
        }
    }
    out
}

/// Answers to requests say `"event":"subscribe"` (or `unsubscribe`); data says `update`/`all`.
fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""event":"subscribe""#) || super::has(msg, r#""event":"unsubscribe""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

/// The topic key of one element of `result`.
fn key_of(channel: &str, r: &Value) -> Option<String> {
    if is_candles(channel) {
        let (interval, symbol) = s(r, "n")?.split_once('_')?;
        return Some(format!("{channel}:{symbol}:{interval}"));
    }
    let symbol = s(r, "s")
        .or_else(|| s(r, "currency_pair"))
        .or_else(|| s(r, "contract"))?;
    Some(format!("{channel}:{symbol}"))
}

fn signal(v: &Value) -> Signal {
    let channel = s(v, "channel").unwrap_or("");
    let id = id_of(v, "id");
    match s(v, "event") {
        Some("subscribe") => match v.get("error") {
            Some(e) if !e.is_null() => Signal::Reject {
                id,
                keys: Vec::new(),
                reason: format!(
                    "{channel}: error {} {}",
                    e.get("code").map_or(String::new(), Value::to_string),
                    s(e, "message").unwrap_or("")
                ),
            },
            _ => Signal::Ack {
                id,
                keys: Vec::new(),
                complete: false,
            },
        },
        Some("unsubscribe") => Signal::Other,
        _ if channel.ends_with(".pong") || channel.is_empty() => Signal::Other,
        _ => {
            let result = v.get("result").unwrap_or(&Value::Null);
            let mut keys: Vec<String> = Vec::new();
            let items = match result {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for k in items.into_iter().filter_map(|r| key_of(channel, r)) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            data_of(keys)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(topics: &[&str], per: usize) -> Vec<Value> {
        let topics = super::super::owned(topics);
        subscribe(&topics, per, &mut 1)
            .into_iter()
            .map(|m| {
                let mut v: Value = serde_json::from_str(&m.text).unwrap();
                // The request time is set when the message is sent.
                let t = v.as_object_mut().unwrap().remove("time").unwrap();
                assert_eq!(t, 0);
                v
            })
            .collect()
    }

    #[test]
    fn subscribe_messages_group_plain_topics_and_carry_parameters() {
        let got = msgs(
            &[
                "spot.trades:BTC_USDT",
                "spot.order_book_update:BTC_USDT:100ms",
                "spot.trades:ETH_USDT",
                "spot.candlesticks:BTC_USDT:1m",
                "spot.trades:SOL_USDT",
            ],
            2,
        );
        assert_eq!(
            got,
            [
                json!({"id":1,"channel":"spot.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms"]}),
                json!({"id":2,"channel":"spot.candlesticks","event":"subscribe","payload":["1m","BTC_USDT"]}),
                json!({"id":3,"channel":"spot.trades","event":"subscribe","payload":["BTC_USDT","ETH_USDT"]}),
                json!({"id":4,"channel":"spot.trades","event":"subscribe","payload":["SOL_USDT"]}),
            ]
        );
        // Gate's field order: time first, as its documentation writes requests.
        let topics = super::super::owned(&["futures.order_book_update:BTC_USDT:100ms:20"]);
        let m = &subscribe(&topics, 10, &mut 7)[0];
        assert!(m.text.starts_with(r#"{"time":"#), "{}", m.text);
        assert!(
            m.text.ends_with(r#""id":7,"channel":"futures.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms","20"]}"#),
            "{}",
            m.text
        );
        assert_eq!(m.id, Some(7));
        assert_eq!(m.topics, topics);
        // Sent at 2026-11-23 22:33:10.5 UTC: the time in seconds.
        let sent = super::super::stamp(Family::Gate, &m.text, 1_795_517_990_500_000_000).unwrap();
        assert_eq!(
            sent,
            m.text.replacen(r#""time":0"#, r#""time":1795517990"#, 1)
        );
    }

    #[test]
    fn topic_shapes_and_keys() {
        assert!(check("spot.trades:BTC_USDT").is_ok());
        assert!(check("spot.order_book:BTC_USDT:20:1000ms").is_ok());
        assert!(check("spot.trades").is_err());
        assert!(check("trades:BTC_USDT").is_err());
        assert!(check("spot.order_book_update:BTC_USDT:").is_err());
        let e = check("spot.candlesticks:BTC_USDT").unwrap_err();
        assert!(e.contains("spot.candlesticks:BTC_USDT:1m"), "{e}");
        assert_eq!(
            key("spot.order_book_update:BTC_USDT:100ms"),
            "spot.order_book_update:BTC_USDT"
        );
        assert_eq!(
            key("futures.candlesticks:BTC_USDT:5m"),
            "futures.candlesticks:BTC_USDT:5m"
        );
    }

    fn data(k: &str) -> Signal {
        Signal::Data(Some(k.to_owned()))
    }

    #[test]
    fn acks_errors_pongs_and_data_of_every_channel() {
        // Shapes from Gate's documentation as quoted by ccxt (ts/src/pro/gate.ts) and
        // cryptofeed (cryptofeed/exchanges/gateio.py).
        assert_eq!(
            classify(
                br#"{"time":1649062304,"time_ms":1649062304123,"id":3,"conn_id":"b61f70b2e6bcca91","channel":"spot.candlesticks","event":"subscribe","payload":["1m","BTC_USDT"],"result":{"status":"success"}}"#
            ),
            Signal::Ack {
                id: Some(3),
                keys: vec![],
                complete: false
            }
        );
        assert_eq!(
            classify(
                br#"{"time":1606292218,"time_ms":1606292218231,"id":2,"channel":"spot.trades","event":"subscribe","error":{"code":2,"message":"unknown currency pair GIBBERISH_USD"},"result":null}"#
            ),
            Signal::Reject {
                id: Some(2),
                keys: vec![],
                reason: "spot.trades: error 2 unknown currency pair GIBBERISH_USD".into()
            }
        );
        assert_eq!(
            classify(
                br#"{"time":1545404023,"time_ms":1545404023123,"channel":"spot.pong","event":"","result":null}"#
            ),
            Signal::Other
        );
        let frames = [
            (
                r#"{"time":1606292218,"time_ms":1606292218231,"channel":"spot.trades","event":"update","result":{"id":309143071,"create_time":1606292218,"create_time_ms":"1606292218213.4578","side":"sell","currency_pair":"GT_USDT","amount":"16.4700000000","price":"0.4705000000"}}"#,
                "spot.trades:GT_USDT",
            ),
            (
                r#"{"time":1671363004,"time_ms":1671363004235,"channel":"spot.book_ticker","event":"update","result":{"t":1671363004228,"u":9793320464,"s":"BTC_USDT","b":"16716.8","B":"0.0134","a":"16716.9","A":"0.0353"}}"#,
                "spot.book_ticker:BTC_USDT",
            ),
            (
                r#"{"time":1650189272,"channel":"spot.order_book_update","event":"update","result":{"t":1650189272515,"e":"depthUpdate","E":1650189272,"s":"GMT_USDT","U":140595902,"u":140595902,"b":[["2.51518","228.119"]],"a":[["2.5182","4.199"]]}}"#,
                "spot.order_book_update:GMT_USDT",
            ),
            (
                r#"{"time":1649326221,"channel":"spot.tickers","event":"update","result":{"currency_pair":"BTC_USDT","last":"43444.82","lowest_ask":"43444.82","highest_bid":"43444.81","change_percentage":"-4.0036","base_volume":"5182.5412425462","quote_volume":"227267634.93123952","high_24h":"47698","low_24h":"42721.03"}}"#,
                "spot.tickers:BTC_USDT",
            ),
            (
                r#"{"time":1649063328,"channel":"spot.candlesticks","event":"update","result":{"t":"1649063280","v":"58932.23174896","c":"45966.47","h":"45997.24","l":"45966.47","o":"45975.18","n":"1m_BTC_USDT","a":"1.281699"}}"#,
                "spot.candlesticks:BTC_USDT:1m",
            ),
            (
                r#"{"id":null,"time":1650188898,"channel":"futures.order_book_update","event":"update","error":null,"result":{"t":1650188898938,"s":"GMT_USDT","U":1577718307,"u":1577719254,"b":[{"p":"2.5178","s":0}],"a":[{"p":"2.52","s":0}]}}"#,
                "futures.order_book_update:GMT_USDT",
            ),
            (
                r#"{"channel":"futures.trades","event":"update","time":1541503698,"time_ms":1541503698123,"result":[{"size":-108,"id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4","contract":"BTC_USD"}]}"#,
                "futures.trades:BTC_USD",
            ),
        ];
        for (frame, k) in frames {
            assert_eq!(classify(frame.as_bytes()), data(k), "{frame}");
            assert!(!needs_look(frame.as_bytes()), "{frame}");
        }
        // A batch naming two contracts speaks for both.
        assert_eq!(
            classify(
                br#"{"time":1,"channel":"futures.tickers","event":"update","result":[{"contract":"BTC_USDT","last":"1"},{"contract":"ETH_USDT","last":"2"}]}"#
            ),
            Signal::DataOf(vec![
                "futures.tickers:BTC_USDT".into(),
                "futures.tickers:ETH_USDT".into()
            ])
        );
        assert!(needs_look(
            br#"{"time":1,"id":1,"channel":"spot.trades","event":"subscribe","result":{"status":"success"}}"#
        ));
    }
}
