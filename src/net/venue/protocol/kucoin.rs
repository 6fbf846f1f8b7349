//! KuCoin classic (spot and futures): topics as KuCoin writes them, `/market/match:BTC-USDT`
//! (candles `/market/candles:BTC-USDT_1min`); one `subscribe` message per channel takes up to
//! 100 symbols, comma-separated (`/market/match:BTC-USDT,ETH-USDT`), with an id that the `ack`
//! echoes. Data comes as `"type":"message"` naming its single-symbol topic; errors as
//! `"type":"error"` with a code and words. Before each connect the connect token and the
//! server come from the REST `bullet-public` endpoint ([`read_bullet`]).
//!
//! Sources: <https://www.kucoin.com/docs-new/websocket-api/base-info/introduction> (token,
//! welcome, ping/pong, subscribe, ack, error), the channel pages under
//! <https://www.kucoin.com/docs-new/> (data shapes), ccxt `ts/src/pro/kucoin.ts` (the
//! `token is expired` error, `pingInterval` from the token answer).

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Outgoing, Protocol, Signal, Topic, group_by_channel, id_of, parsed, reason, s, take_id,
};
use crate::net::venue::token::Dial;

pub(super) const PROTOCOL: Protocol = Protocol {
    binary: super::binary_is_data,
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
};

/// `/path/channel:SYMBOL`: KuCoin's topic, one symbol.
fn check(topic: &str) -> Result<(), String> {
    if !topic.starts_with('/') {
        return Err("expected /channel:SYMBOL, e.g. /market/match:BTC-USDT".to_owned());
    }
    super::two(topic, ':', "/channel:SYMBOL, e.g. /market/match:BTC-USDT")
}

/// The one symbol of an incremental book topic of `channel` (`/market/level2:BTC-USDT` →
/// `BTC-USDT`); `None` for other channels and for a topic naming several symbols.
fn level2_symbol(topic: &str, channel: &str) -> Option<String> {
    let (ch, symbol) = topic.split_once(':')?;
    (ch == channel && !symbol.is_empty() && !symbol.contains(',')).then(|| symbol.to_owned())
}

/// The symbol of a spot `/market/level2` topic.
pub fn spot_level2_symbol(topic: &str) -> Option<String> {
    level2_symbol(topic, "/market/level2")
}

/// The symbol of a futures `/contractMarket/level2` topic.
pub fn futures_level2_symbol(topic: &str) -> Option<String> {
    level2_symbol(topic, "/contractMarket/level2")
}

/// The first sequence a spot `trade.l2update` message covers (`data.sequenceStart`).
pub fn spot_level2_first_id(msg: &[u8]) -> Option<u64> {
    super::u64_field(msg, "sequenceStart")
}

/// The sequence of a futures `level2` message, or of a REST order book (`data.sequence`, a
/// number in futures answers, a string in spot ones).
pub fn level2_sequence(msg: &[u8]) -> Option<u64> {
    super::u64_field(msg, "sequence")
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for (channel, group) in group_by_channel(topics) {
        for chunk in group.chunks(per_msg) {
            let symbols: Vec<&str> = chunk.iter().map(|t| super::symbol_of(t)).collect();
            let id = take_id(next_id);
            let m = json!({
                "id": id.to_string(),
                "type": "subscribe",
                "topic": format!("{channel}:{}", symbols.join(",")),
                "privateChannel": false,
                "response": true,
            });
            out.push(Outgoing::new(&m, chunk.to_vec(), Some(id)));
        }
    }
    out
}

/// Data frames are `"type":"message"`; everything else (welcome, ack, pong, error) is looked at.
fn needs_look(msg: &[u8]) -> bool {
    !super::has(msg, r#""type":"message""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    match s(v, "type") {
        Some("message") => Signal::Data(s(v, "topic").map(str::to_owned)),
        Some("ack") => Signal::Ack {
            id: id_of(v, "id"),
            keys: Vec::new(),
            complete: false,
        },
        Some("error") => {
            let words = v.get("data").map(reason).unwrap_or_default();
            let code = v.get("code").map(reason).unwrap_or_default();
            // A connection whose token has run out is useless: a new connect fetches a new one.
            if words.contains("token") {
                return Signal::Reconnect(format!("error {code}: {words}"));
            }
            Signal::Reject {
                id: id_of(v, "id"),
                keys: named_topics(&words),
                reason: format!("error {code}: {words}"),
            }
        }
        _ => Signal::Other,
    }
}

/// The topics an error names (`topic /market/foo:BTC-USDT,ETH-USDT is not found`), one per
/// symbol.
fn named_topics(words: &str) -> Vec<String> {
    words
        .split_whitespace()
        .filter(|w| w.starts_with('/') && w.contains(':'))
        .flat_map(|w| {
            let (channel, symbols) = w.split_once(':').unwrap_or((w, ""));
            symbols
                .split(',')
                .filter(|x| !x.is_empty())
                .map(move |x| format!("{channel}:{x}"))
        })
        .collect()
}

/// Reads KuCoin's `bullet-public` answer: `{"code":"200000","data":{"token":"…",
/// "instanceServers":[{"endpoint":"wss://…","pingInterval":18000,…}]}}` gives
/// `endpoint?token=…&connectId=…` and the ping interval.
///
/// # Errors
/// Not that shape, a code other than 200000, or an endpoint that is not a WebSocket URL.
pub fn read_bullet(body: &[u8], connect_id: &str) -> Result<Dial, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    if s(&v, "code") != Some("200000") {
        return Err(format!(
            "code {} {}",
            v.get("code").map(reason).unwrap_or_default(),
            s(&v, "msg").unwrap_or("")
        ));
    }
    let data = v.get("data").unwrap_or(&Value::Null);
    let token = s(data, "token").ok_or("no data.token")?;
    let server = data
        .get("instanceServers")
        .and_then(|a| a.get(0))
        .ok_or("no data.instanceServers[0]")?;
    let endpoint = s(server, "endpoint").ok_or("no endpoint in instanceServers[0]")?;
    let mut url = url::Url::parse(endpoint)
        .ok()
        .filter(|u| matches!(u.scheme(), "ws" | "wss"))
        .ok_or_else(|| format!("endpoint {endpoint:?} is not a ws:// or wss:// URL"))?;
    url.query_pairs_mut()
        .append_pair("token", token)
        .append_pair("connectId", connect_id);
    let ping_interval = server
        .get("pingInterval")
        .and_then(Value::as_u64)
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    Ok(Dial { url, ping_interval })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::venue::Family;
    use crate::net::venue::protocol::{classify, needs_look, parse_topic, subscribe_messages};

    fn c(msg: &str) -> Signal {
        classify(Family::Kucoin, msg.as_bytes())
    }

    fn data(key: &str) -> Signal {
        Signal::Data(Some(key.to_owned()))
    }

    #[test]
    fn one_message_per_channel_with_up_to_the_limit_of_symbols() {
        let topics: Vec<String> = [
            "/market/match:BTC-USDT",
            "/market/level2:BTC-USDT",
            "/market/match:ETH-USDT",
            "/market/match:SOL-USDT",
        ]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
        let out = subscribe_messages(Family::Kucoin, &topics, 2, &mut 7);
        let texts: Vec<&str> = out.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                r#"{"id":"7","type":"subscribe","topic":"/market/match:BTC-USDT,ETH-USDT","privateChannel":false,"response":true}"#,
                r#"{"id":"8","type":"subscribe","topic":"/market/match:SOL-USDT","privateChannel":false,"response":true}"#,
                r#"{"id":"9","type":"subscribe","topic":"/market/level2:BTC-USDT","privateChannel":false,"response":true}"#,
            ]
        );
        assert_eq!(out[0].id, Some(7));
        assert_eq!(
            out[0].topics,
            ["/market/match:BTC-USDT", "/market/match:ETH-USDT"]
        );
        assert!(parse_topic(Family::Kucoin, "/market/candles:BTC-USDT_1min").is_ok());
        assert!(parse_topic(Family::Kucoin, "market/match:BTC-USDT").is_err());
        assert!(parse_topic(Family::Kucoin, "/market/match").is_err());
    }

    #[test]
    fn acks_errors_and_control_messages() {
        assert_eq!(
            c(r#"{"id":"wsrec-1-0-1-0a0b0c0d","type":"welcome"}"#),
            Signal::Other
        );
        assert_eq!(
            c(r#"{"id":"1","type":"pong","timestamp":1729817200000000}"#),
            Signal::Other
        );
        assert_eq!(
            c(r#"{"id":"3","type":"ack"}"#),
            Signal::Ack {
                id: Some(3),
                keys: vec![],
                complete: false
            }
        );
        assert_eq!(
            c(
                r#"{"id":"2","type":"error","code":404,"data":"topic /market/matc:BTC-USDT,ETH-USDT is not found"}"#
            ),
            Signal::Reject {
                id: Some(2),
                keys: vec![
                    "/market/matc:BTC-USDT".into(),
                    "/market/matc:ETH-USDT".into()
                ],
                reason: "error 404: topic /market/matc:BTC-USDT,ETH-USDT is not found".into()
            }
        );
        // ccxt's kucoin.ts handles this one: the token ran out, a new connect needs a new one.
        assert!(matches!(
            c(r#"{"id":"wsrec-1","type":"error","code":401,"data":"token is expired"}"#),
            Signal::Reconnect(r) if r.contains("token is expired")
        ));
        for control in [
            r#"{"id":"hQvf8jkno","type":"welcome"}"#,
            r#"{"id":"3","type":"ack"}"#,
            r#"{"id":"1","type":"pong"}"#,
            r#"{"type":"error","code":415,"data":"type is not supported"}"#,
        ] {
            assert!(needs_look(Family::Kucoin, control.as_bytes()), "{control}");
        }
    }

    #[test]
    fn data_of_every_listed_channel_names_its_topic() {
        // Shapes of the docs-new channel pages (spot: Trade, Orderbook increment, Ticker,
        // Orderbook level1/level5/level50, Symbol snapshot, Klines; futures: Match execution,
        // Orderbook increment, Ticker v2, Orderbook level5/level50, Instrument, Klines).
        for (frame, topic) in [
            (
                r#"{"topic":"/market/match:BTC-USDT","type":"message","subject":"trade.l3match","data":{"makerOrderId":"671b5007389355000701b1d3","price":"67523","sequence":"11067996711960577","side":"buy","size":"0.003","symbol":"BTC-USDT","takerOrderId":"671b50161777ff00074c168d","time":"1729843222921000000","tradeId":"11067996711960577","type":"match"}}"#,
                "/market/match:BTC-USDT",
            ),
            (
                r#"{"topic":"/market/level2:BTC-USDT","type":"message","subject":"trade.l2update","data":{"changes":{"asks":[["67993.3","1.21427407","11068004227252225"]],"bids":[]},"sequenceEnd":11068004227252225,"sequenceStart":11068004227252225,"symbol":"BTC-USDT","time":1729816425625}}"#,
                "/market/level2:BTC-USDT",
            ),
            (
                r#"{"topic":"/market/ticker:BTC-USDT","type":"message","subject":"trade.ticker","data":{"bestAsk":"67218.7","bestAskSize":"1.92318539","bestBid":"67218.6","bestBidSize":"0.01045638","price":"67220","sequence":"14691455768","size":"0.00004316","time":1729757723612}}"#,
                "/market/ticker:BTC-USDT",
            ),
            (
                r#"{"topic":"/contractMarket/execution:XBTUSDTM","type":"message","subject":"match","sn":1697215690,"data":{"symbol":"XBTUSDTM","sequence":1697215690,"side":"buy","size":1,"price":"67450.8","takerOrderId":"226218296346484737","makerOrderId":"226218279057563648","tradeId":"1729826339126","ts":1729826339127000000}}"#,
                "/contractMarket/execution:XBTUSDTM",
            ),
            (
                r#"{"topic":"/contractMarket/limitCandle:XBTUSDTM_1min","type":"message","subject":"candle.stick","data":{"symbol":"XBTUSDTM","candles":["1729826280","67447.9","67447.9","67447.9","67447.9","16","16"],"time":1729826340021}}"#,
                "/contractMarket/limitCandle:XBTUSDTM_1min",
            ),
        ] {
            assert_eq!(c(frame), data(topic), "{frame}");
            assert!(!needs_look(Family::Kucoin, frame.as_bytes()), "{frame}");
        }
    }

    #[test]
    fn the_bullet_answer_gives_the_url_with_its_token_and_the_ping_interval() {
        let body = br#"{"code":"200000","data":{"token":"2neAiuYvAU61ZDXANAGAsiL4-iAExhsBXZxftpOeh_55i3Ysy2q2LEsEWU64mdzUOPusi34M_wGoSf7iNyEWJ1UQy47YbpY4zVdzilNP-Bj3iXzrjjGlWtiYB9J6i9GjsxUuhPw3BlrzazF6ghq4Lzf7scStOz3KkxjwpsOBCH4=.WNQmhZQeUKIkh97KYgU0Lg==","instanceServers":[{"endpoint":"wss://ws-api-spot.kucoin.com/","encrypt":true,"protocol":"websocket","pingInterval":18000,"pingTimeout":10000}]}}"#;
        let d = read_bullet(body, "wsrec-7").unwrap();
        assert_eq!(d.url.host_str(), Some("ws-api-spot.kucoin.com"));
        let q: Vec<(String, String)> = d.url.query_pairs().into_owned().collect();
        assert_eq!(q[0].0, "token");
        assert!(q[0].1.ends_with("WNQmhZQeUKIkh97KYgU0Lg=="));
        assert_eq!(q[1], ("connectId".into(), "wsrec-7".into()));
        assert_eq!(d.ping_interval, Some(Duration::from_secs(18)));
        // The token never shows in what is logged or recorded.
        let masked = crate::config::mask_url(d.url.as_str());
        assert_eq!(
            masked,
            "wss://ws-api-spot.kucoin.com/?token=***&connectId=***"
        );
        for (bad, says) in [
            (&br#"{"code":"429000","msg":"Too Many Requests"}"#[..], "429000"),
            (br#"{"code":"200000","data":{"instanceServers":[]}}"#, "token"),
            (br#"{"code":"200000","data":{"token":"t","instanceServers":[]}}"#, "instanceServers"),
            (
                br#"{"code":"200000","data":{"token":"t","instanceServers":[{"endpoint":"https://x/"}]}}"#,
                "not a ws://",
            ),
            (b"<html>", "not JSON"),
        ] {
            let e = read_bullet(bad, "c").unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
