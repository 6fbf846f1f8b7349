//! HTX (Huobi) market data, spot and USDT-margined swaps: topics are HTX's own channel names
//! (`market.btcusdt.trade.detail`, `market.BTC-USDT.depth.step0`), one `{"sub":…,"id":…}` per
//! topic; every frame the venue sends is gzip-compressed binary, pings included.
//!
//! The server sends `{"ping":N}` every 5 s and closes the connection after two unanswered
//! (<https://huobiapi.github.io/docs/spot/v1/en/#websocket-market-data>, "Heartbeat and
//! Connection"): each is answered at once with `{"pong":N}`, the same number. Acks are
//! `{"id":"1","status":"ok","subbed":"market.btcusdt.trade.detail","ts":…}`, refusals
//! `{"status":"error","err-code":"bad-request","err-msg":"…","id":"2"}`, data
//! `{"ch":"market.btcusdt.trade.detail","ts":…,"tick":{…}}` (ccxt `ts/src/pro/htx.ts`, which
//! quotes each of them).
//!
//! Cost: a gzip ping is about 40 bytes, a data frame 150 bytes and more; in steady state only
//! frames of [`SMALL`] bytes or less are inflated (every ping, a few microseconds each), and
//! while a topic waits for its first data a frame is inflated only as far as its leading
//! `"ch"` when it has one ([`CH_PREFIX`] bytes), so a large book snapshot is never inflated
//! whole for the tracker.

use std::borrow::Cow;
use std::io::Read;

use serde_json::{Value, json};

use super::{Binary, Outgoing, Protocol, Signal, Topic, id_of, parsed, s, take_id, two};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary,
};

/// Frames up to this size are inflated even in steady state: pings (37 bytes for a 13-digit
/// number), acks and errors are below it, data frames above (150 bytes or more, measured on
/// ccxt's sample frames gzip-compressed).
const SMALL: usize = 64;

/// How much of a frame is inflated to read a data frame's `"ch"` (HTX puts it first).
const CH_PREFIX: usize = 256;

/// The most a control message may inflate to; a larger frame is data.
const MAX_INFLATED: u64 = 1 << 20;

fn check(topic: &str) -> Result<(), String> {
    let rest = topic.strip_prefix("market.").unwrap_or_default();
    two(
        rest,
        '.',
        "market.SYMBOL.CHANNEL, e.g. market.btcusdt.trade.detail",
    )
}

/// One `sub` per topic: HTX takes a single topic per request.
fn subscribe(topics: &[Topic], _per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .iter()
        .map(|t| {
            let id = take_id(next_id);
            let m = json!({"sub": t, "id": id.to_string()});
            Outgoing::new(&m, vec![t.clone()], Some(id))
        })
        .collect()
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""ping""#) || super::has(msg, r#""status""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if let Some(n) = v.get("ping").filter(|n| n.is_u64()) {
        return Signal::Reply(json!({ "pong": n }).to_string());
    }
    if let Some(ch) = s(v, "ch") {
        return Signal::Data(Some(ch.to_owned()));
    }
    let id = id_of(v, "id");
    match s(v, "status") {
        Some("ok") => Signal::Ack {
            id,
            keys: s(v, "subbed").map(str::to_owned).into_iter().collect(),
            complete: false,
        },
        Some("error") => Signal::Reject {
            id,
            keys: Vec::new(),
            reason: format!(
                "{}: {}",
                s(v, "err-code").unwrap_or("error"),
                s(v, "err-msg").unwrap_or("")
            ),
        },
        _ => Signal::Other,
    }
}

/// Every frame is gzip: inflated as [`SMALL`] and [`CH_PREFIX`] say, and read as text.
fn binary(frame: &[u8], look: bool) -> Binary<'_> {
    if !look && frame.len() > SMALL {
        return Binary::Data;
    }
    let mut gz = flate2::read::GzDecoder::new(frame);
    let mut text = Vec::new();
    if look && frame.len() > SMALL {
        if (&mut gz)
            .take(CH_PREFIX as u64)
            .read_to_end(&mut text)
            .is_err()
        {
            return Binary::Data;
        }
        if let Some(ch) = leading_ch(&text) {
            return Binary::Signal(Signal::Data(Some(ch.to_owned())));
        }
    }
    match gz.take(MAX_INFLATED).read_to_end(&mut text) {
        Ok(_) => Binary::Text(Cow::Owned(text)),
        Err(_) => Binary::Data,
    }
}

/// The channel of a data frame that starts `{"ch":"…"`.
fn leading_ch(text: &[u8]) -> Option<&str> {
    let rest = text.strip_prefix(br#"{"ch":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::{Family, binary as read_binary, classify, needs_look, subscribe_messages};
    use super::*;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    /// What a frame means, read the way the tracker reads it.
    fn read(frame: &[u8], look: bool) -> Option<Signal> {
        match read_binary(Family::Htx, frame, look) {
            Binary::Data => None,
            Binary::Signal(s) => Some(s),
            Binary::Text(t) => Some(classify(Family::Htx, &t)),
        }
    }

    // Frames as ccxt's htx.ts quotes them.
    const TRADE: &str = r#"{"ch":"market.btcusdt.trade.detail","ts":1583495834011,"tick":{"id":105004645372,"ts":1583495833751,"data":[{"id":10500464537273190000000,"ts":1583495833751,"tradeId":102090727790,"amount":0.003893,"price":9150.01,"direction":"sell"}]}}"#;
    const ACK: &str =
        r#"{"id":"1","status":"ok","subbed":"market.btcusdt.mbp.150","ts":1583414229143}"#;
    const ERROR: &str = r#"{"ts":1586323747018,"status":"error","err-code":"bad-request","err-msg":"invalid mbp.150.symbol linkusdt","id":"2"}"#;

    #[test]
    fn one_sub_per_topic_with_string_ids() {
        let topics = vec![
            "market.btcusdt.trade.detail".to_owned(),
            "market.btcusdt.depth.step0".to_owned(),
        ];
        let m = subscribe_messages(Family::Htx, &topics, 10, &mut 1);
        let texts: Vec<&str> = m.iter().map(|o| o.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                r#"{"sub":"market.btcusdt.trade.detail","id":"1"}"#,
                r#"{"sub":"market.btcusdt.depth.step0","id":"2"}"#
            ]
        );
        assert_eq!(m[1].id, Some(2));
        assert!(check("market.btcusdt.bbo").is_ok());
        assert!(check("btcusdt.trade.detail").is_err());
        assert!(check("market.btcusdt").is_err());
    }

    #[test]
    fn pings_are_answered_with_the_same_number_in_steady_state() {
        let ping = gz(r#"{"ping":1492420473027}"#);
        assert!(ping.len() <= SMALL, "{}", ping.len());
        assert_eq!(
            read(&ping, false),
            Some(Signal::Reply(r#"{"pong":1492420473027}"#.to_owned()))
        );
        // A number too long for a float keeps every digit.
        assert_eq!(
            read(&gz(r#"{"ping":18446744073709551615}"#), false),
            Some(Signal::Reply(r#"{"pong":18446744073709551615}"#.to_owned()))
        );
        assert!(needs_look(Family::Htx, br#"{"ping":1}"#));
    }

    #[test]
    fn acks_errors_and_data_of_every_channel() {
        assert_eq!(
            read(&gz(ACK), true),
            Some(Signal::Ack {
                id: Some(1),
                keys: vec!["market.btcusdt.mbp.150".into()],
                complete: false
            })
        );
        assert_eq!(
            read(&gz(ERROR), true),
            Some(Signal::Reject {
                id: Some(2),
                keys: vec![],
                reason: "bad-request: invalid mbp.150.symbol linkusdt".into()
            })
        );
        for ch in [
            "market.btcusdt.trade.detail",
            "market.btcusdt.depth.step0",
            "market.btcusdt.mbp.150",
            "market.btcusdt.kline.1min",
            "market.btcusdt.bbo",
            "market.btcusdt.detail",
            "market.BTC-USDT.depth.step0",
        ] {
            let frame = gz(&TRADE.replace("market.btcusdt.trade.detail", ch));
            assert_eq!(
                read(&frame, true),
                Some(Signal::Data(Some(ch.to_owned()))),
                "{ch}"
            );
            // Not read in steady state.
            assert_eq!(read(&frame, false), None, "{ch}");
        }
        assert!(!needs_look(Family::Htx, TRADE.as_bytes()));
        // Not gzip: data that cannot be told.
        assert_eq!(read(b"not gzip", true), None);
    }

    #[test]
    fn a_large_frame_is_inflated_only_as_far_as_its_channel() {
        // A book of 150 levels a side: its channel is read from the first bytes.
        let levels: Vec<String> = (0..150).map(|i| format!("[{}.5,{i}]", 9000 + i)).collect();
        let book = format!(
            r#"{{"ch":"market.btcusdt.depth.step0","ts":1,"tick":{{"bids":[{}],"asks":[{}]}}}}"#,
            levels.join(","),
            levels.join(",")
        );
        assert_eq!(
            read_binary(Family::Htx, &gz(&book), true),
            Binary::Signal(Signal::Data(Some("market.btcusdt.depth.step0".into())))
        );
    }
}
