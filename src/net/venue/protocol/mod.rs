//! What goes over the wire for each venue: topics, subscribe messages, and what an incoming
//! message means (data for a topic, an ack, a rejection, a reconnect request, a heartbeat
//! request that needs an answer).
//!
//! One module per protocol family, each a `Protocol` of plain functions; the functions here
//! pick the family's. Pure functions, table-tested. Incoming messages are only parsed when [`needs_look`] says they
//! may be control messages or when the connection still waits for a topic's first data, so a
//! venue stream's steady state costs a substring check per message.

mod binance;
mod bitfinex;
mod bitget;
mod bitmex;
mod bitstamp;
mod bybit;
mod coinbase;
mod coinbase_exchange;
mod cryptocom;
mod deribit;
mod gate;
mod htx;
mod hyperliquid;
mod kraken;
mod kraken_futures;
mod mexc;
mod okx;
// Appended families (kept after the others to ease merges).
mod dydx;
mod kucoin;
mod upbit;

use serde_json::Value;

use super::{Family, Topic};

pub use binance::MAX_URL_LEN;
pub use bitfinex::{FLAGS as BITFINEX_FLAGS, MAINTENANCE as BITFINEX_MAINTENANCE};
pub use kucoin::read_bullet as kucoin_read_bullet;

/// The parts of the REST depth snapshots ([`crate::net::venue::book::RestSnapshot`]) that read
/// a family's topics, messages and snapshot bodies.
pub mod depth {
    pub use super::binance::{
        depth_first_id as binance_first_id, depth_snapshot_id as binance_snapshot_id,
        depth_symbol as binance_symbol,
    };
    pub use super::bitstamp::{
        diff_first_id as bitstamp_first_id, diff_symbol as bitstamp_symbol,
        order_book_id as bitstamp_snapshot_id,
    };
    pub use super::gate::{
        futures_update_symbol as gate_futures_symbol, order_book_id as gate_snapshot_id,
        spot_update_symbol as gate_spot_symbol, update_first_id as gate_first_id,
    };
    pub use super::kucoin::{
        futures_level2_symbol as kucoin_futures_symbol, level2_sequence as kucoin_sequence,
        spot_level2_first_id as kucoin_spot_first_id, spot_level2_symbol as kucoin_spot_symbol,
    };
    pub use super::mexc::{
        aggre_depth_first_id as mexc_first_id, aggre_depth_symbol as mexc_symbol,
    };
}

/// What an incoming message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Data of the topic with this key ([`topic_key`]); `None` when it cannot be told.
    Data(Option<String>),
    /// Data of every topic with one of these keys: one frame that speaks for several symbols
    /// (Coinbase's `status` lists every product asked for, Kraken's `instrument` every pair).
    DataOf(Vec<String>),
    /// Data of every topic whose key starts with this prefix: a frame that names its channel
    /// but no symbol (BitMEX's `liquidation` partial: `"filter":{},"data":[]`).
    DataOfPrefix(String),
    /// Subscriptions confirmed: by topic key, and/or the request id it answers. With
    /// `complete`, topics of that request missing from `keys` were refused.
    Ack {
        /// Request id, if the venue echoes one.
        id: Option<u64>,
        /// Topic keys confirmed.
        keys: Vec<String>,
        /// `keys` lists everything the request obtained.
        complete: bool,
    },
    /// Subscriptions refused.
    Reject {
        /// Request id, if echoed.
        id: Option<u64>,
        /// Topic keys named by the refusal (may be empty when the venue does not say).
        keys: Vec<String>,
        /// The venue's words.
        reason: String,
    },
    /// Bitfinex: data frames starting with `[id,` belong to this topic key.
    Channel {
        /// The channel id.
        id: i64,
        /// The topic key.
        key: String,
    },
    /// The venue asks for a reconnect (maintenance, restart).
    Reconnect(String),
    /// Must be answered with this message at once.
    Reply(String),
    /// The venue allows this many more connects from this IP in its current window (BitMEX's
    /// welcome message: `"limit":{"remaining":39}`).
    ConnectsLeft(u64),
    /// The venue is in maintenance until it says otherwise (with a [`Signal::Reconnect`]) or
    /// `at_most` has passed: keep the connection, and reconnect no sooner than that if it ends.
    Maintenance {
        /// The venue's words.
        reason: String,
        /// The longest the venue says its maintenance takes.
        at_most: std::time::Duration,
    },
    /// A reply to our ping, a heartbeat, a status: nothing to do.
    Other,
}

/// One protocol family's rules. Each family module fills one in; [`protocol`] picks it.
pub(crate) struct Protocol {
    /// Checks a topic's shape (after the checks every family shares); `Err` says what is wrong.
    check: fn(&str) -> Result<(), String>,
    /// The key under which a topic's data is recognised ([`topic_key`]).
    key: fn(&str) -> String,
    /// Subscribe (and set-up) messages for topics, at most `per_msg` topics each, request ids
    /// taken from the counter.
    subscribe: fn(&[Topic], usize, &mut u64) -> Vec<Outgoing>,
    /// Whether a message may be a control message ([`needs_look`]).
    needs_look: fn(&[u8]) -> bool,
    /// What a text message means ([`classify`]).
    classify: fn(&[u8]) -> Signal,
    /// What a binary message holds ([`binary`]); [`binary_is_data`] for venues whose binary
    /// frames are all data.
    binary: fn(&[u8], bool) -> Binary<'_>,
}

/// What a binary message holds, as its family reads it ([`binary`]). The recording keeps the
/// frame as received; this is only for following acks, errors, pings and live topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binary<'a> {
    /// Data whose topic is not told (or not read: nothing waits for it).
    Data,
    /// A message to read as a text message would be ([`needs_look`], [`classify`]): the frame
    /// itself (Upbit's JSON in binary frames) or its decoded bytes (HTX's gzip).
    Text(std::borrow::Cow<'a, [u8]>),
    /// What it means, read straight from the frame (MEXC's protobuf channel name).
    Signal(Signal),
}

/// For families whose binary frames are all data (none of today's JSON venues sends binary).
fn binary_is_data(_: &[u8], _: bool) -> Binary<'_> {
    Binary::Data
}

/// The rules of `family`.
fn protocol(family: Family) -> &'static Protocol {
    match family {
        Family::Bybit => &bybit::PROTOCOL,
        Family::Binance => &binance::PROTOCOL,
        Family::Okx => &okx::PROTOCOL,
        Family::Coinbase => &coinbase::PROTOCOL,
        Family::Kraken => &kraken::PROTOCOL,
        Family::Bitstamp => &bitstamp::PROTOCOL,
        Family::Bitfinex => &bitfinex::PROTOCOL,
        Family::Deribit => &deribit::PROTOCOL,
        Family::Bitmex => &bitmex::PROTOCOL,
        Family::Hyperliquid => &hyperliquid::PROTOCOL,
        Family::Gate => &gate::PROTOCOL,
        Family::Bitget => &bitget::PROTOCOL,
        Family::Cryptocom => &cryptocom::PROTOCOL,
        Family::Htx => &htx::PROTOCOL,
        Family::Mexc => &mexc::PROTOCOL,
        Family::Kucoin => &kucoin::PROTOCOL,
        Family::Dydx => &dydx::PROTOCOL,
        Family::Upbit => &upbit::PROTOCOL,
        Family::KrakenFutures => &kraken_futures::PROTOCOL,
        Family::CoinbaseExchange => &coinbase_exchange::PROTOCOL,
    }
}

/// Checks a topic's shape for the venue; `Err` says what is wrong.
pub fn parse_topic(family: Family, topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("empty topic".to_owned());
    }
    if topic
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == ',')
    {
        return Err("topics cannot contain spaces, quotes, backslashes or commas".to_owned());
    }
    (protocol(family).check)(topic)
}

/// `a{sep}b` with both parts non-empty; `Err` names the expected `shape`.
fn two(topic: &str, sep: char, shape: &str) -> Result<(), String> {
    match topic.split_once(sep) {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok(()),
        _ => Err(format!("expected {shape}")),
    }
}

/// The most common shape: `channel:SYMBOL`.
fn channel_colon_symbol(topic: &str) -> Result<(), String> {
    two(topic, ':', "channel:SYMBOL")
}

/// The key under which a topic's data is recognised (the topic without parameters the data
/// does not repeat, such as Kraken's book depth; Hyperliquid's candle interval stays, as its
/// candles name it in `i`).
pub fn topic_key(family: Family, topic: &str) -> String {
    (protocol(family).key)(topic)
}

/// The topic itself, for families whose data names it as written.
fn same_key(topic: &str) -> String {
    topic.to_owned()
}

/// The connection URL for `topics` when the venue takes streams in the URL (Binance's
/// combined-stream endpoint, see `binance::url_streams`): the URL and how many of `topics`,
/// from the front, it names (0, and `url` unchanged, for other venues and URLs).
pub fn url_streams(family: Family, url: &str, topics: &[Topic]) -> (String, usize) {
    match family {
        Family::Binance => binance::url_streams(url, topics),
        _ => (url.to_owned(), 0),
    }
}

/// The message to send now: `text` with the request time the venue asks for set to `now_ns`
/// (Gate's `time` in seconds, Crypto.com's `nonce` in milliseconds), or `None` to send `text` as
/// built. Subscribe messages are built once per stream and sent again on every reconnect, which
/// may come hours later: the time in them is set when each is sent.
pub fn stamp(family: Family, text: &str, now_ns: u64) -> Option<String> {
    match family {
        Family::Gate => set_number(text, "time", now_ns / 1_000_000_000),
        Family::Cryptocom => set_number(text, "nonce", now_ns / 1_000_000),
        _ => None,
    }
}

/// `text` with the number after the first `"key":` replaced by `value`; `None` if it has none.
fn set_number(text: &str, key: &str, value: u64) -> Option<String> {
    let field = format!("\"{key}\":");
    let start = text.find(&field)? + field.len();
    let digits = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len() - start);
    if digits == 0 {
        return None;
    }
    Some(format!(
        "{}{value}{}",
        &text[..start],
        &text[start + digits..]
    ))
}

/// A subscribe (or set-up) message and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The text sent.
    pub text: String,
    /// Topics it subscribes to (none for set-up messages such as Deribit's `set_heartbeat` or
    /// Coinbase's heartbeats channel).
    pub topics: Vec<Topic>,
    /// The request id the venue echoes in its answer, if it does.
    pub id: Option<u64>,
}

impl Outgoing {
    fn new(text: &Value, topics: Vec<Topic>, id: Option<u64>) -> Self {
        Self {
            text: text.to_string(),
            topics,
            id,
        }
    }
}

/// Subscribe messages for `topics`, at most `per_msg` topics each, with request ids taken from
/// `next_id`.
pub fn subscribe_messages(
    family: Family,
    topics: &[Topic],
    per_msg: usize,
    next_id: &mut u64,
) -> Vec<Outgoing> {
    (protocol(family).subscribe)(topics, per_msg.max(1), next_id)
}

/// Whether a message may be a control message worth parsing (a cheap substring test).
pub fn needs_look(family: Family, msg: &[u8]) -> bool {
    (protocol(family).needs_look)(msg)
}

/// What `msg` means. Parses it; call when [`needs_look`] or while a topic waits for data.
pub fn classify(family: Family, msg: &[u8]) -> Signal {
    (protocol(family).classify)(msg)
}

/// What the binary message `frame` holds. With `look` false (no topic waits for its first
/// data) a family reads only frames a cheap test marks as possible control messages (HTX: small
/// gzip frames, which holds its pings); with `look` true it reads every frame.
pub fn binary(family: Family, frame: &[u8], look: bool) -> Binary<'_> {
    (protocol(family).binary)(frame, look)
}

impl Signal {
    /// Whether the message is data (of some topic, or one that cannot be told; a Bitfinex
    /// channel frame, heartbeats included: they come only on a live subscription), as opposed
    /// to an ack, a refusal, a pong or a request.
    pub fn is_data(&self) -> bool {
        match self {
            Signal::Data(_) | Signal::DataOf(_) | Signal::DataOfPrefix(_) => true,
            Signal::Channel { key, .. } => key.is_empty(),
            _ => false,
        }
    }
}

/// Whether `msg` contains `needle`.
fn has(msg: &[u8], needle: &str) -> bool {
    memchr::memmem::find(msg, needle.as_bytes()).is_some()
}

/// The unsigned integer value of the first `"key":` in `msg`, written as a number or as a string
/// of digits (`"U":157` or `"microtimestamp":"1633"`), read without parsing the JSON: the key is
/// matched as bytes, so it must not occur earlier as a value or as another object's key.
fn u64_field(msg: &[u8], key: &str) -> Option<u64> {
    let mut needle = Vec::with_capacity(key.len() + 3);
    needle.push(b'"');
    needle.extend_from_slice(key.as_bytes());
    needle.extend_from_slice(b"\":");
    let at = memchr::memmem::find(msg, &needle)? + needle.len();
    let rest = &msg[at..];
    let rest = rest.trim_ascii_start();
    let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// `msg` parsed as JSON and read by `signal`; a message that is not JSON (OKX's and BitMEX's
/// bare `pong`, for one) means nothing.
fn parsed(msg: &[u8], signal: fn(&Value) -> Signal) -> Signal {
    match serde_json::from_slice::<Value>(msg) {
        Ok(v) => signal(&v),
        Err(_) => Signal::Other,
    }
}

fn take_id(next: &mut u64) -> u64 {
    let i = *next;
    *next += 1;
    i
}

/// The channel parameter after a dot: `book.25` → (`book`, `25`).
fn split_param(channel: &str) -> (&str, Option<&str>) {
    match channel.split_once('.') {
        Some((c, p)) => (c, Some(p)),
        None => (channel, None),
    }
}

/// The symbol of a `channel:SYMBOL` topic (empty if it has none).
fn symbol_of(topic: &str) -> &str {
    topic.split_once(':').map_or("", |(_, s)| s)
}

/// Topics grouped by their channel (the part before `:`), in first-seen order.
fn group_by_channel(topics: &[Topic]) -> Vec<(String, Vec<Topic>)> {
    let mut groups: Vec<(String, Vec<Topic>)> = Vec::new();
    for t in topics {
        let c = t.split_once(':').map_or(t.as_str(), |(c, _)| c);
        match groups.iter_mut().find(|(g, _)| g == c) {
            Some((_, v)) => v.push(t.clone()),
            None => groups.push((c.to_owned(), vec![t.clone()])),
        }
    }
    groups
}

/// Subscribe messages for venues that subscribe a channel for a list of products: one per
/// channel and chunk of at most `per_msg` of its topics, built by `message` from the channel and
/// the chunk's symbols, without request ids.
fn per_channel(
    topics: &[Topic],
    per_msg: usize,
    message: impl Fn(&str, &[&str]) -> Value,
) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for (channel, group) in group_by_channel(topics) {
        for chunk in group.chunks(per_msg) {
            let symbols: Vec<&str> = chunk.iter().map(|t| symbol_of(t)).collect();
            out.push(Outgoing::new(
                &message(&channel, &symbols),
                chunk.to_vec(),
                None,
            ));
        }
    }
    out
}

/// The string under `key`.
fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A request id echoed as a number or a numeric string.
fn id_of(v: &Value, key: &str) -> Option<u64> {
    match v.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(t) => t.parse().ok(),
        _ => None,
    }
}

/// A venue's words: a string as it is, anything else as JSON.
fn reason(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

/// The first string under `key` anywhere in `v`, depth first.
fn find_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(t)) = m.get(key) {
                return Some(t);
            }
            m.values().find_map(|x| find_str(x, key))
        }
        Value::Array(a) => a.iter().find_map(|x| find_str(x, key)),
        _ => None,
    }
}

/// Data of the topics with these keys: none known, one, or several.
fn data_of(mut keys: Vec<String>) -> Signal {
    match keys.len() {
        0 => Signal::Data(None),
        1 => Signal::Data(keys.pop()),
        _ => Signal::DataOf(keys),
    }
}

/// Topics as the config holds them, for tests.
#[cfg(test)]
fn owned(topics: &[&str]) -> Vec<Topic> {
    topics.iter().map(|t| (*t).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(family: Family, topics: &[&str], per: usize) -> Vec<String> {
        let topics: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        subscribe_messages(family, &topics, per, &mut 1)
            .into_iter()
            .map(|m| m.text)
            .collect()
    }

    #[test]
    fn subscribe_messages_per_venue() {
        assert_eq!(
            msgs(
                Family::Bybit,
                &[
                    "publicTrade.BTCUSDT",
                    "orderbook.50.BTCUSDT",
                    "tickers.ETHUSDT"
                ],
                2
            ),
            [
                r#"{"req_id":"1","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.50.BTCUSDT"]}"#,
                r#"{"req_id":"2","op":"subscribe","args":["tickers.ETHUSDT"]}"#
            ]
        );
        assert_eq!(
            msgs(Family::Binance, &["btcusdt@aggTrade"], 10),
            [r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}"#]
        );
        assert_eq!(
            msgs(Family::Okx, &["books:BTC-USDT"], 10),
            [r#"{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}"#]
        );
        assert_eq!(
            msgs(
                Family::Coinbase,
                &["level2:BTC-USD", "market_trades:BTC-USD", "level2:ETH-USD"],
                10
            ),
            [
                r#"{"type":"subscribe","channel":"heartbeats"}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"level2"}"#,
                r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"market_trades"}"#
            ]
        );
        assert_eq!(
            msgs(Family::Kraken, &["book.25:BTC/USD", "trade:BTC/USD"], 10),
            [
                r#"{"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":25},"req_id":1}"#,
                r#"{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"]},"req_id":2}"#
            ]
        );
        assert_eq!(
            msgs(Family::Bitstamp, &["live_trades_btcusd"], 10),
            [r#"{"event":"bts:subscribe","data":{"channel":"live_trades_btcusd"}}"#]
        );
        assert_eq!(
            msgs(
                Family::Bitfinex,
                &["trades:tBTCUSD", "candles:trade:1m:tBTCUSD"],
                10
            ),
            [
                r#"{"event":"conf","flags":196608}"#,
                r#"{"event":"subscribe","channel":"trades","symbol":"tBTCUSD"}"#,
                r#"{"event":"subscribe","channel":"candles","key":"trade:1m:tBTCUSD"}"#
            ]
        );
        assert_eq!(
            msgs(Family::Deribit, &["trades.BTC-PERPETUAL.100ms"], 10),
            [
                r#"{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":30}}"#,
                r#"{"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{"channels":["trades.BTC-PERPETUAL.100ms"]}}"#
            ]
        );
        assert_eq!(
            msgs(Family::Bitmex, &["trade:XBTUSD"], 10),
            [r#"{"op":"subscribe","args":["trade:XBTUSD"]}"#]
        );
        assert_eq!(
            msgs(Family::Hyperliquid, &["trades:BTC", "candle.1m:ETH"], 10),
            [
                r#"{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}"#,
                r#"{"method":"subscribe","subscription":{"type":"candle","coin":"ETH","interval":"1m"}}"#
            ]
        );
    }

    fn c(family: Family, msg: &str) -> Signal {
        classify(family, msg.as_bytes())
    }

    fn data(key: &str) -> Signal {
        Signal::Data(Some(key.to_owned()))
    }

    #[test]
    fn real_frames_are_data_of_their_topic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
        let first = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            c(Family::Bybit, &first("bybit-linear_publicTrade.jsonl")),
            data("publicTrade.BTCUSDT")
        );
        assert_eq!(
            c(Family::Binance, &first("binance-usdm_aggTrade.jsonl")),
            data("ctkusdt@aggTrade")
        );
        assert_eq!(
            c(Family::Okx, &first("okx_trades.jsonl")),
            data("trades:BTC-USD-220527")
        );
        assert_eq!(
            c(Family::Coinbase, &first("coinbase-advanced_level2.jsonl")),
            data("level2:BTC-USD")
        );
        assert_eq!(
            c(Family::Coinbase, &first("coinbase-advanced_ticker.jsonl")),
            data("ticker:BTC-USD")
        );
        let trade = std::fs::read_to_string(dir.join("bitstamp_live_trades.jsonl")).unwrap();
        let trade = trade
            .lines()
            .find(|l| l.contains(r#""event":"trade""#))
            .unwrap();
        assert!(
            matches!(c(Family::Bitstamp, trade), Signal::Data(Some(k)) if k.starts_with("live_trades_"))
        );
    }

    #[test]
    fn frames_that_name_their_topic_their_own_way() {
        // Hyperliquid candles name the coin `s` and the interval `i`.
        let candle = r#"{"channel":"candle","data":{"t":1786310760000,"T":1786310819999,"s":"BTC","i":"1m","o":"65120.0","c":"65114.0","h":"65125.0","l":"65110.0","v":"3.21","n":57}}"#;
        assert_eq!(c(Family::Hyperliquid, candle), data("candle.1m:BTC"));
        assert_eq!(
            c(
                Family::Hyperliquid,
                r#"{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"candle","coin":"BTC","interval":"1m"}}}"#
            ),
            Signal::Ack {
                id: None,
                keys: vec!["candle.1m:BTC".into()],
                complete: false
            }
        );
        // Coinbase status names products by `id`, all of them in one frame.
        let status = r#"{"channel":"status","timestamp":"2026-08-09T21:05:48.3Z","sequence_num":5,"events":[{"type":"snapshot","products":[{"product_type":"SPOT","id":"BTC-USD","base_currency":"BTC","quote_currency":"USD","status":"online","status_message":""},{"product_type":"SPOT","id":"ETH-USD","base_currency":"ETH","quote_currency":"USD","status":"online","status_message":""}]}]}"#;
        assert_eq!(
            c(Family::Coinbase, status),
            Signal::DataOf(vec!["status:BTC-USD".into(), "status:ETH-USD".into()])
        );
        // A market_trades batch names each trade's product once.
        let trades = r#"{"channel":"market_trades","timestamp":"t","sequence_num":1,"events":[{"type":"update","trades":[{"product_id":"BTC-USD","trade_id":"1"},{"product_id":"BTC-USD","trade_id":"2"}]}]}"#;
        assert_eq!(c(Family::Coinbase, trades), data("market_trades:BTC-USD"));
        // BitMEX's liquidation partial names only its table.
        assert_eq!(
            c(
                Family::Bitmex,
                r#"{"table":"liquidation","action":"partial","keys":["orderID"],"types":{"orderID":"guid","symbol":"symbol","side":"symbol","price":"float","leavesQty":"long"},"filter":{},"data":[]}"#
            ),
            Signal::DataOfPrefix("liquidation:".into())
        );
        // Kraken's instrument snapshot speaks for every pair it lists; it is asked for without
        // a symbol, once for all its topics.
        let instrument = r#"{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC","status":"enabled","precision":10,"precision_display":5,"borrowable":true,"collateral_value":1.0,"margin_rate":0.01}],"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online"},{"symbol":"ETH/USD","base":"ETH","quote":"USD","status":"online"}]}}"#;
        assert_eq!(
            c(Family::Kraken, instrument),
            Signal::DataOf(vec![
                "instrument:BTC/USD".into(),
                "instrument:ETH/USD".into()
            ])
        );
        assert_eq!(
            msgs(
                Family::Kraken,
                &["instrument:BTC/USD", "instrument:ETH/USD"],
                1
            ),
            [r#"{"method":"subscribe","params":{"channel":"instrument"},"req_id":1}"#]
        );
    }

    #[test]
    fn acks_rejections_and_requests() {
        let ack = |id: Option<u64>, keys: &[&str], complete: bool| Signal::Ack {
            id,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            complete,
        };
        assert_eq!(
            c(
                Family::Bybit,
                r#"{"success":true,"ret_msg":"","conn_id":"x","req_id":"3","op":"subscribe"}"#
            ),
            ack(Some(3), &[], false)
        );
        assert_eq!(
            c(
                Family::Bybit,
                r#"{"success":false,"ret_msg":"error:handler not found,topic:foo.BAR","conn_id":"x","req_id":"1","op":"subscribe"}"#
            ),
            Signal::Reject {
                id: Some(1),
                keys: vec!["foo.BAR".into()],
                reason: "error:handler not found,topic:foo.BAR".into()
            }
        );
        assert_eq!(
            c(Family::Binance, r#"{"result":null,"id":2}"#),
            ack(Some(2), &[], false)
        );
        assert!(matches!(
            c(
                Family::Binance,
                r#"{"error":{"code":2,"msg":"Invalid request"},"id":1}"#
            ),
            Signal::Reject { id: Some(1), .. }
        ));
        assert!(matches!(
            c(Family::Binance, r#"{"e":"serverShutdown","E":1}"#),
            Signal::Reconnect(_)
        ));
        assert_eq!(
            c(
                Family::Okx,
                r#"{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a"}"#
            ),
            ack(None, &["books:BTC-USDT"], false)
        );
        assert!(matches!(
            c(
                Family::Okx,
                r#"{"event":"error","code":"60018","msg":"doesn't exist"}"#
            ),
            Signal::Reject { .. }
        ));
        assert!(matches!(
            c(
                Family::Okx,
                r#"{"event":"notice","code":"64008","msg":"upgrade"}"#
            ),
            Signal::Reconnect(_)
        ));
        assert_eq!(c(Family::Okx, "pong"), Signal::Other);
        assert_eq!(
            c(
                Family::Coinbase,
                r#"{"channel":"subscriptions","events":[{"subscriptions":{"level2":["BTC-USD"],"heartbeats":["heartbeats"]}}]}"#
            ),
            ack(None, &["level2:BTC-USD", "heartbeats:heartbeats"], false)
        );
        assert_eq!(
            c(
                Family::Kraken,
                r#"{"method":"subscribe","result":{"channel":"book","depth":25,"symbol":"BTC/USD"},"success":true,"req_id":1}"#
            ),
            ack(Some(1), &["book:BTC/USD"], false)
        );
        assert!(matches!(
            c(
                Family::Kraken,
                r#"{"error":"Currency pair not supported","method":"subscribe","success":false,"symbol":"FOO/BAR","req_id":2}"#
            ),
            Signal::Reject { id: Some(2), .. }
        ));
        assert_eq!(
            c(
                Family::Kraken,
                r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[]}]}"#
            ),
            data("book:BTC/USD")
        );
        assert_eq!(
            c(Family::Kraken, r#"{"channel":"heartbeat"}"#),
            Signal::Other
        );
        assert!(matches!(
            c(
                Family::Bitstamp,
                r#"{"event":"bts:request_reconnect","channel":"","data":""}"#
            ),
            Signal::Reconnect(_)
        ));
        assert_eq!(
            c(
                Family::Bitfinex,
                r#"{"event":"subscribed","channel":"trades","chanId":17,"symbol":"tBTCUSD","pair":"BTCUSD"}"#
            ),
            Signal::Channel {
                id: 17,
                key: "trades:tBTCUSD".into()
            }
        );
        assert_eq!(
            c(Family::Bitfinex, r#"[17,"hb"]"#),
            Signal::Channel {
                id: 17,
                key: String::new()
            }
        );
        assert!(matches!(
            c(
                Family::Bitfinex,
                r#"{"event":"info","code":20051,"msg":"restart"}"#
            ),
            Signal::Reconnect(_)
        ));
        // Maintenance: no reconnect until it ends (20061, which asks for a resubscription).
        assert_eq!(
            c(
                Family::Bitfinex,
                r#"{"event":"info","code":20060,"msg":"Entering in Maintenance mode"}"#
            ),
            Signal::Maintenance {
                reason: "info 20060: Entering in Maintenance mode".into(),
                at_most: std::time::Duration::from_secs(120)
            }
        );
        assert!(matches!(
            c(
                Family::Bitfinex,
                r#"{"event":"info","code":20061,"msg":"Maintenance ended"}"#
            ),
            Signal::Reconnect(r) if r.contains("20061")
        ));
        // The answer to the flags, and channel messages with a sequence number appended.
        assert_eq!(
            c(
                Family::Bitfinex,
                r#"{"event":"conf","status":"OK","flags":196608}"#
            ),
            Signal::Other
        );
        assert_eq!(
            c(Family::Bitfinex, r#"[17,"cs",-1285917431,44]"#),
            Signal::Channel {
                id: 17,
                key: String::new()
            }
        );
        assert!(
            matches!(c(Family::Deribit, r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#), Signal::Reply(r) if r.contains("public/test"))
        );
        assert_eq!(
            c(
                Family::Deribit,
                r#"{"jsonrpc":"2.0","id":2,"result":["trades.BTC-PERPETUAL.100ms"]}"#
            ),
            ack(Some(2), &["trades.BTC-PERPETUAL.100ms"], true)
        );
        assert_eq!(
            c(
                Family::Deribit,
                r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":[]}}"#
            ),
            data("trades.BTC-PERPETUAL.100ms")
        );
        assert_eq!(
            c(
                Family::Bitmex,
                r#"{"success":true,"subscribe":"trade:XBTUSD","request":{"op":"subscribe","args":["trade:XBTUSD"]}}"#
            ),
            ack(None, &["trade:XBTUSD"], false)
        );
        assert_eq!(
            c(
                Family::Bitmex,
                r#"{"table":"trade","action":"partial","data":[],"filter":{"symbol":"XBTUSD"}}"#
            ),
            data("trade:XBTUSD")
        );
        assert!(
            matches!(c(Family::Bitmex, r#"{"status":400,"error":"Unknown table: foo","meta":{},"request":{"op":"subscribe","args":["foo:XBTUSD"]}}"#), Signal::Reject { keys, .. } if keys == ["foo:XBTUSD"])
        );
        assert_eq!(
            c(
                Family::Hyperliquid,
                r#"{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}"#
            ),
            ack(None, &["trades:BTC"], false)
        );
        assert_eq!(
            c(
                Family::Hyperliquid,
                r#"{"channel":"l2Book","data":{"coin":"BTC","levels":[]}}"#
            ),
            data("l2Book:BTC")
        );
        // BitMEX's welcome counts the connects left.
        assert_eq!(
            c(
                Family::Bitmex,
                r#"{"info":"Welcome to the BitMEX Realtime API.","version":"2.0.0","timestamp":"2025-12-15T12:07:08.577Z","docs":"https://www.bitmex.com/app/wsAPI","heartbeatEnabled":false,"limit":{"remaining":719},"appName":"ws-feedhandler-56b7bc7b45-qnnbl"}"#
            ),
            Signal::ConnectsLeft(719)
        );
    }

    #[test]
    fn control_messages_pass_the_cheap_test_and_common_data_does_not() {
        assert!(needs_look(
            Family::Bybit,
            br#"{"success":true,"op":"subscribe"}"#
        ));
        assert!(!needs_look(
            Family::Bybit,
            br#"{"topic":"publicTrade.BTCUSDT","data":[]}"#
        ));
        assert!(needs_look(
            Family::Bitfinex,
            br#"{"event":"info","code":20051}"#
        ));
        assert!(!needs_look(Family::Bitfinex, br#"[17,"hb"]"#));
        assert!(needs_look(
            Family::Deribit,
            br#"{"method":"heartbeat","params":{"type":"test_request"}}"#
        ));
        assert!(!needs_look(
            Family::Okx,
            br#"{"arg":{"channel":"books"},"data":[]}"#
        ));
    }

    #[test]
    fn topic_shapes() {
        assert!(parse_topic(Family::Bybit, "publicTrade.BTCUSDT").is_ok());
        assert!(parse_topic(Family::Bybit, "publicTrade").is_err());
        assert!(parse_topic(Family::Binance, "btcusdt").is_err());
        assert!(parse_topic(Family::Okx, "books:").is_err());
        assert!(parse_topic(Family::Coinbase, "level2:BTC USD").is_err());
        assert_eq!(topic_key(Family::Kraken, "book.25:BTC/USD"), "book:BTC/USD");
        // Candles of two intervals on one coin are told apart by the interval their data names.
        assert_eq!(
            topic_key(Family::Hyperliquid, "candle.1m:BTC"),
            "candle.1m:BTC"
        );
        let e = parse_topic(Family::Hyperliquid, "candle:BTC").unwrap_err();
        assert!(e.contains("candle.1m:BTC"), "{e}");
        assert!(parse_topic(Family::Hyperliquid, "candle.1m:BTC").is_ok());
        let e = parse_topic(Family::Bitfinex, "candles:tBTCUSD").unwrap_err();
        assert!(e.contains("candles:trade:1m:tBTCUSD"), "{e}");
        assert!(parse_topic(Family::Bitfinex, "candles:trade:1m:tBTCUSD").is_ok());
        assert_eq!(
            topic_key(Family::Binance, "BTCUSDT@aggTrade"),
            "btcusdt@aggTrade"
        );
        // All-market streams: no symbol, and their case is kept.
        for t in ["!bookTicker", "!forceOrder@arr", "!markPrice@arr@1s"] {
            assert!(parse_topic(Family::Binance, t).is_ok(), "{t}");
            assert_eq!(topic_key(Family::Binance, t), t);
        }
        assert!(parse_topic(Family::Binance, "!").is_err());
        assert!(parse_topic(Family::Binance, "!@arr").is_err());
        assert!(parse_topic(Family::Binance, "btcusdt@!forceOrder@arr").is_err());
        let topics = vec!["!forceOrder@arr".to_owned(), "BTCUSDT@trade".to_owned()];
        let (url, named) = url_streams(Family::Binance, "wss://h/market/stream", &topics);
        assert_eq!(named, 2);
        assert_eq!(
            url,
            "wss://h/market/stream?streams=!forceOrder@arr/btcusdt@trade"
        );
        assert_eq!(
            msgs(Family::Binance, &["!markPrice@arr@1s"], 10),
            [r#"{"method":"SUBSCRIBE","params":["!markPrice@arr@1s"],"id":1}"#]
        );
        assert_eq!(
            c(
                Family::Binance,
                r#"{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT"}}}"#
            ),
            data("!forceOrder@arr")
        );
    }
}
