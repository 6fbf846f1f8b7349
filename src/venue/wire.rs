//! What goes over the wire for each venue: topics, subscribe messages, and what an incoming
//! message means (data for a topic, an ack, a rejection, a reconnect request, a heartbeat
//! request that needs an answer).
//!
//! Pure functions, table-tested. Incoming messages are only parsed when [`needs_look`] says they
//! may be control messages or when the connection still waits for a topic's first data, so a
//! venue stream's steady state costs a substring check per message.

use serde_json::{Value, json};

use super::{Family, Topic};

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
    let two = |sep: char, shape: &str| match topic.split_once(sep) {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok(()),
        _ => Err(format!("expected {shape}")),
    };
    match family {
        Family::Bybit => two('.', "channel.SYMBOL"),
        // All-market streams have no symbol: `!bookTicker`, `!forceOrder@arr`.
        Family::Binance => match topic.strip_prefix('!') {
            Some(name) if !name.is_empty() && !name.starts_with('@') => Ok(()),
            Some(_) => Err("expected !stream (an all-market stream)".to_owned()),
            None => match topic.split_once('@') {
                Some((sym, stream)) if !sym.is_empty() && !stream.is_empty() && !stream.starts_with('!') => Ok(()),
                _ => Err("expected symbol@stream, or !stream for an all-market stream (those go in `topics`, not `channels`)".to_owned()),
            },
        },
        Family::Deribit => two('.', "channel.INSTRUMENT.interval"),
        Family::Bitstamp => two('_', "channel_pair"),
        // Bitfinex candles are keyed `trade:TIMEFRAME:SYMBOL`; a bare symbol is refused.
        Family::Bitfinex => match topic.strip_prefix("candles:") {
            Some(key) if key.split(':').filter(|p| !p.is_empty()).count() < 3 => Err(
                "candles take a key trade:TIMEFRAME:SYMBOL, e.g. candles:trade:1m:tBTCUSD"
                    .to_owned(),
            ),
            _ => two(':', "channel:SYMBOL"),
        },
        // Hyperliquid refuses a candle subscription without its interval.
        Family::Hyperliquid if topic.starts_with("candle:") => {
            Err("candles need an interval, e.g. candle.1m:BTC".to_owned())
        }
        Family::Okx | Family::Coinbase | Family::Kraken | Family::Bitmex | Family::Hyperliquid => {
            two(':', "channel:SYMBOL")
        }
    }
}

/// The key under which a topic's data is recognised (the topic without parameters the data
/// does not repeat, such as Kraken's book depth; Hyperliquid's candle interval stays, as its
/// candles name it in `i`).
pub fn topic_key(family: Family, topic: &str) -> String {
    match family {
        Family::Kraken => {
            let (channel, symbol) = topic.split_once(':').unwrap_or((topic, ""));
            let base = channel.split_once('.').map_or(channel, |(b, _)| b);
            format!("{base}:{symbol}")
        }
        Family::Binance => binance_stream(topic),
        _ => topic.to_owned(),
    }
}

/// A Binance stream name: the symbol lowercase, the stream type as given (`btcusdt@aggTrade`);
/// an all-market stream (`!forceOrder@arr`) exactly as given, as stream names are
/// case-sensitive.
fn binance_stream(topic: &str) -> String {
    match topic.split_once('@') {
        Some((sym, rest)) if !sym.starts_with('!') => {
            format!("{}@{rest}", sym.to_ascii_lowercase())
        }
        _ => topic.to_owned(),
    }
}

/// Longest connection URL that names its streams itself. Binance's servers accepted URLs of up to
/// 8004 characters when measured (oliver-zehentleitner/unicorn-binance-websocket-api#17, #19);
/// half of that leaves room for proxies on the way and for the limit to shrink.
pub const MAX_URL_LEN: usize = 4096;

/// The connection URL for `topics` when the venue takes streams in the URL: Binance's
/// combined-stream endpoint (a URL ending in `/stream`, without a query) as
/// `…/stream?streams=a/b/c`, which needs no subscribe message and so counts nothing against the
/// venue's limit of incoming messages per second
/// (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams). Takes topics
/// from the front while the URL stays within [`MAX_URL_LEN`]; returns the URL and how many it
/// names (0, and `url` unchanged, for other venues and URLs).
pub fn url_streams(family: Family, url: &str, topics: &[Topic]) -> (String, usize) {
    if family != Family::Binance || url.contains('?') || !url.ends_with("/stream") {
        return (url.to_owned(), 0);
    }
    let mut out = format!("{url}?streams=");
    let mut named = 0;
    for t in topics {
        let stream = binance_stream(t);
        if out.len() + usize::from(named > 0) + stream.len() > MAX_URL_LEN {
            break;
        }
        if named > 0 {
            out.push('/');
        }
        out.push_str(&stream);
        named += 1;
    }
    if named == 0 {
        return (url.to_owned(), 0);
    }
    (out, named)
}

fn split_param(channel: &str) -> (&str, Option<&str>) {
    match channel.split_once('.') {
        Some((c, p)) => (c, Some(p)),
        None => (channel, None),
    }
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

fn take_id(next: &mut u64) -> u64 {
    let i = *next;
    *next += 1;
    i
}

/// Subscribe messages for `topics`, at most `per_msg` topics each, with request ids taken from
/// `next_id`.
pub fn subscribe_messages(
    family: Family,
    topics: &[Topic],
    per_msg: usize,
    next_id: &mut u64,
) -> Vec<Outgoing> {
    let per_msg = per_msg.max(1);
    let mut out = Vec::new();
    let mut push = |text: Value, topics: Vec<Topic>, id: Option<u64>| {
        out.push(Outgoing {
            text: text.to_string(),
            topics,
            id,
        });
    };
    match family {
        Family::Bybit => {
            for chunk in topics.chunks(per_msg) {
                let id = take_id(next_id);
                let m = json!({"req_id": id.to_string(), "op": "subscribe", "args": chunk});
                push(m, chunk.to_vec(), Some(id));
            }
        }
        Family::Binance => {
            for chunk in topics.chunks(per_msg) {
                let id = take_id(next_id);
                let params: Vec<String> = chunk.iter().map(|t| binance_stream(t)).collect();
                let m = json!({"method": "SUBSCRIBE", "params": params, "id": id});
                push(m, chunk.to_vec(), Some(id));
            }
        }
        Family::Okx => {
            for chunk in topics.chunks(per_msg) {
                let args: Vec<Value> = chunk
                    .iter()
                    .map(|t| {
                        let (c, s) = t.split_once(':').unwrap_or((t, ""));
                        json!({"channel": c, "instId": s})
                    })
                    .collect();
                push(
                    json!({"op": "subscribe", "args": args}),
                    chunk.to_vec(),
                    None,
                );
            }
        }
        Family::Coinbase => {
            push(
                json!({"type": "subscribe", "channel": "heartbeats"}),
                Vec::new(),
                None,
            );
            for (channel, group) in group_by_channel(topics) {
                for chunk in group.chunks(per_msg) {
                    let products: Vec<&str> = chunk
                        .iter()
                        .map(|t| t.split_once(':').map_or("", |(_, s)| s))
                        .collect();
                    let m =
                        json!({"type": "subscribe", "product_ids": products, "channel": channel});
                    push(m, chunk.to_vec(), None);
                }
            }
        }
        Family::Kraken => {
            for (channel, group) in group_by_channel(topics) {
                let (name, param) = split_param(&channel);
                // `instrument` lists every pair on one subscription and takes no symbol
                // (docs.kraken.com, spot-websocket-v2/instrument): one message for all its topics.
                let whole = name == "instrument";
                for chunk in group.chunks(if whole { group.len() } else { per_msg }) {
                    let mut params = json!({"channel": name});
                    if !whole {
                        let symbols: Vec<&str> = chunk
                            .iter()
                            .map(|t| t.split_once(':').map_or("", |(_, s)| s))
                            .collect();
                        params["symbol"] = json!(symbols);
                    }
                    if let Some(p) = param.and_then(|p| p.parse::<u64>().ok()) {
                        let field = if name == "ohlc" { "interval" } else { "depth" };
                        params[field] = json!(p);
                    }
                    let id = take_id(next_id);
                    let m = json!({"method": "subscribe", "params": params, "req_id": id});
                    push(m, chunk.to_vec(), Some(id));
                }
            }
        }
        Family::Bitstamp => {
            for t in topics {
                let m = json!({"event": "bts:subscribe", "data": {"channel": t}});
                push(m, vec![t.clone()], None);
            }
        }
        Family::Bitfinex => {
            // First the flags, as Bitfinex's own clients send them right after connecting: a
            // sequence number at the end of every channel message (SEQ_ALL) and a checksum
            // message after every book change (OB_CHECKSUM), so `verify` can check them.
            push(
                json!({"event": "conf", "flags": BITFINEX_FLAGS}),
                Vec::new(),
                None,
            );
            for t in topics {
                let (c, s) = t.split_once(':').unwrap_or((t, ""));
                let m = if c == "candles" {
                    json!({"event": "subscribe", "channel": c, "key": s})
                } else {
                    json!({"event": "subscribe", "channel": c, "symbol": s})
                };
                push(m, vec![t.clone()], None);
            }
        }
        Family::Deribit => {
            let id = take_id(next_id);
            let m = json!({"jsonrpc": "2.0", "id": id, "method": "public/set_heartbeat", "params": {"interval": 30}});
            push(m, Vec::new(), Some(id));
            for chunk in topics.chunks(per_msg) {
                let id = take_id(next_id);
                let m = json!({"jsonrpc": "2.0", "id": id, "method": "public/subscribe", "params": {"channels": chunk}});
                push(m, chunk.to_vec(), Some(id));
            }
        }
        Family::Bitmex => {
            for chunk in topics.chunks(per_msg) {
                push(
                    json!({"op": "subscribe", "args": chunk}),
                    chunk.to_vec(),
                    None,
                );
            }
        }
        Family::Hyperliquid => {
            for t in topics {
                let (c, coin) = t.split_once(':').unwrap_or((t, ""));
                let (kind, param) = split_param(c);
                let mut sub = json!({"type": kind, "coin": coin});
                if let Some(p) = param {
                    sub["interval"] = json!(p);
                }
                push(
                    json!({"method": "subscribe", "subscription": sub}),
                    vec![t.clone()],
                    None,
                );
            }
        }
    }
    out
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

/// Whether a message may be a control message worth parsing (a cheap substring test).
pub fn needs_look(family: Family, msg: &[u8]) -> bool {
    let has = |needle: &str| memchr::memmem::find(msg, needle.as_bytes()).is_some();
    match family {
        Family::Bybit => has(r#""op":"#),
        Family::Binance => has(r#""id":"#) || has("serverShutdown"),
        Family::Okx => has(r#""event":"#),
        Family::Coinbase => has(r#""channel":"subscriptions""#) || has(r#""type":"error""#),
        Family::Kraken => has(r#""method":"#),
        Family::Bitstamp => has("bts:"),
        Family::Bitfinex => msg.first() == Some(&b'{'),
        Family::Deribit => has(r#""id":"#) || has("test_request"),
        Family::Bitmex => has(r#""success""#) || has(r#""error""#) || has(r#""remaining""#),
        Family::Hyperliquid => {
            has(r#""channel":"subscriptionResponse""#) || has(r#""channel":"error""#)
        }
    }
}

/// What `msg` means. Parses it; call when [`needs_look`] or while a topic waits for data.
pub fn classify(family: Family, msg: &[u8]) -> Signal {
    if family == Family::Bitfinex && msg.first() == Some(&b'[') {
        return bitfinex_data(msg);
    }
    // Not JSON: OKX's and BitMEX's bare `pong`, for one.
    let Ok(v) = serde_json::from_slice::<Value>(msg) else {
        return Signal::Other;
    };
    match family {
        Family::Bybit => bybit(&v),
        Family::Binance => binance(&v),
        Family::Okx => okx(&v),
        Family::Coinbase => coinbase(&v),
        Family::Kraken => kraken(&v),
        Family::Bitstamp => bitstamp(&v),
        Family::Bitfinex => bitfinex(&v),
        Family::Deribit => deribit(&v),
        Family::Bitmex => bitmex(&v),
        Family::Hyperliquid => hyperliquid(&v),
    }
}

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

fn reason(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}

fn bybit(v: &Value) -> Signal {
    if let Some(topic) = s(v, "topic") {
        return Signal::Data(Some(topic.to_owned()));
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

fn binance(v: &Value) -> Signal {
    if let Some(stream) = s(v, "stream") {
        return Signal::Data(Some(binance_stream(stream)));
    }
    let event = v
        .get("e")
        .or_else(|| v.get("event").and_then(|e| e.get("e")));
    if event.and_then(Value::as_str) == Some("serverShutdown") {
        return Signal::Reconnect("serverShutdown event".to_owned());
    }
    if v.get("error").is_some() || v.get("code").is_some() {
        let why = v.get("error").map_or_else(|| reason(v), reason);
        return Signal::Reject {
            id: id_of(v, "id"),
            keys: Vec::new(),
            reason: why,
        };
    }
    if v.get("result").is_some() && v.get("id").is_some() {
        return Signal::Ack {
            id: id_of(v, "id"),
            keys: Vec::new(),
            complete: false,
        };
    }
    Signal::Other
}

fn okx_key(arg: &Value) -> Option<String> {
    Some(format!("{}:{}", s(arg, "channel")?, s(arg, "instId")?))
}

fn okx(v: &Value) -> Signal {
    match s(v, "event") {
        Some("subscribe") => Signal::Ack {
            id: None,
            keys: v.get("arg").and_then(okx_key).into_iter().collect(),
            complete: false,
        },
        Some("error") => Signal::Reject {
            id: None,
            keys: v.get("arg").and_then(okx_key).into_iter().collect(),
            reason: format!(
                "{} {}",
                s(v, "code").unwrap_or(""),
                s(v, "msg").unwrap_or("")
            ),
        },
        Some("notice") if s(v, "code") == Some("64008") => Signal::Reconnect(format!(
            "notice 64008: {}",
            s(v, "msg").unwrap_or("service upgrade")
        )),
        Some(_) => Signal::Other,
        None => Signal::Data(v.get("arg").and_then(okx_key)),
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

fn coinbase(v: &Value) -> Signal {
    if s(v, "type") == Some("error") {
        return Signal::Reject {
            id: None,
            keys: Vec::new(),
            reason: s(v, "message").unwrap_or("error").to_owned(),
        };
    }
    let Some(channel) = s(v, "channel") else {
        return Signal::Other;
    };
    let subscribed = match channel {
        "subscriptions" => {
            let mut keys = Vec::new();
            let events = v.get("events").and_then(Value::as_array);
            for e in events.into_iter().flatten() {
                let subs = e.get("subscriptions").and_then(Value::as_object);
                for (c, products) in subs.into_iter().flatten() {
                    for p in products.as_array().into_iter().flatten() {
                        if let Some(p) = p.as_str() {
                            keys.push(format!("{c}:{p}"));
                        }
                    }
                }
            }
            return Signal::Ack {
                id: None,
                keys,
                complete: false,
            };
        }
        "heartbeats" => return Signal::Other,
        "l2_data" => "level2",
        other => other,
    };
    let events = v.get("events").unwrap_or(&Value::Null);
    data_of(
        coinbase_products(channel, events)
            .into_iter()
            .map(|p| format!("{subscribed}:{p}"))
            .collect(),
    )
}

/// The products a Coinbase message speaks for: `events[].product_id` (`l2_data`), the
/// `product_id` of each entry of an event's list (`trades`, `tickers`, `candles`), and for
/// `status` the `id` of each of `events[].products` (the status channel names products by `id`:
/// docs.cdp.coinbase.com, advanced-trade-apis/websocket/websocket-channels, status channel).
fn coinbase_products(channel: &str, events: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_owned());
        }
    };
    let id_key = if channel == "status" {
        "id"
    } else {
        "product_id"
    };
    for e in events.as_array().into_iter().flatten() {
        if let Some(p) = s(e, "product_id") {
            // One product per event (`l2_data`): its updates need not be walked.
            add(p);
            continue;
        }
        let lists = e
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_array);
        for item in lists.flatten() {
            if let Some(p) = s(item, id_key) {
                add(p);
            }
        }
    }
    out
}

/// Data of the topics with these keys: none known, one, or several.
fn data_of(mut keys: Vec<String>) -> Signal {
    match keys.len() {
        0 => Signal::Data(None),
        1 => Signal::Data(keys.pop()),
        _ => Signal::DataOf(keys),
    }
}

fn kraken(v: &Value) -> Signal {
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

fn bitstamp(v: &Value) -> Signal {
    let channel = s(v, "channel").unwrap_or("");
    match s(v, "event") {
        Some("bts:subscription_succeeded") => Signal::Ack {
            id: None,
            keys: vec![channel.to_owned()],
            complete: false,
        },
        Some("bts:error") => Signal::Reject {
            id: None,
            keys: (!channel.is_empty())
                .then(|| channel.to_owned())
                .into_iter()
                .collect(),
            reason: v
                .get("data")
                .and_then(|d| s(d, "message"))
                .unwrap_or("error")
                .to_owned(),
        },
        Some("bts:request_reconnect") => Signal::Reconnect("bts:request_reconnect".to_owned()),
        Some("bts:heartbeat") => Signal::Other,
        _ if !channel.is_empty() => Signal::Data(Some(channel.to_owned())),
        _ => Signal::Other,
    }
}

/// Bitfinex `conf` flags: SEQ_ALL (65536) | OB_CHECKSUM (131072), as bitfinex-api-node's
/// `WSv2.flags` and bfx-api-node-core's `FLAGS` define them.
pub const BITFINEX_FLAGS: u64 = 65_536 | 131_072;

/// How long a Bitfinex maintenance (info 20060) lasts at most, by its documentation.
pub const BITFINEX_MAINTENANCE: std::time::Duration = std::time::Duration::from_secs(120);

fn bitfinex_key(v: &Value) -> Option<String> {
    let channel = s(v, "channel")?;
    let sym = if channel == "candles" {
        s(v, "key")?
    } else {
        s(v, "symbol")?
    };
    Some(format!("{channel}:{sym}"))
}

fn bitfinex(v: &Value) -> Signal {
    match s(v, "event") {
        Some("subscribed") => match (v.get("chanId").and_then(Value::as_i64), bitfinex_key(v)) {
            (Some(id), Some(key)) => Signal::Channel { id, key },
            _ => Signal::Other,
        },
        Some("error") => Signal::Reject {
            id: None,
            keys: bitfinex_key(v).into_iter().collect(),
            reason: format!(
                "{} {}",
                v.get("code").map(reason).unwrap_or_default(),
                s(v, "msg").unwrap_or("")
            ),
        },
        // docs.bitfinex.com/docs/ws-general (info messages): 20051 "please reconnect"; 20060
        // "pause any activity and resume after receiving the info message 20061 (it should take
        // 120 seconds at most)"; 20061 "it is advised to unsubscribe/subscribe again all
        // channels". The official client (bitfinex-api-node) pauses on 20060 and resumes on
        // 20061, so a reconnect waits for the end of the maintenance.
        Some("info") => {
            let why = |code| format!("info {code}: {}", s(v, "msg").unwrap_or(""));
            match v.get("code").and_then(Value::as_u64) {
                Some(code @ (20051 | 20061)) => Signal::Reconnect(why(code)),
                Some(code @ 20060) => Signal::Maintenance {
                    reason: why(code),
                    at_most: BITFINEX_MAINTENANCE,
                },
                _ => Signal::Other,
            }
        }
        _ => Signal::Other,
    }
}

/// `[chanId, …]`: only the channel id is read (the frame may be megabytes of book).
fn bitfinex_data(msg: &[u8]) -> Signal {
    let body = &msg[1..];
    let end = body
        .iter()
        .position(|&b| b == b',' || b == b']')
        .unwrap_or(body.len());
    match std::str::from_utf8(&body[..end])
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
    {
        Some(id) => Signal::Channel {
            id,
            key: String::new(),
        },
        None => Signal::Data(None),
    }
}

fn deribit(v: &Value) -> Signal {
    if s(v, "method") == Some("subscription") {
        let params = v.get("params").unwrap_or(&Value::Null);
        return Signal::Data(s(params, "channel").map(str::to_owned));
    }
    if s(v, "method") == Some("heartbeat") {
        let params = v.get("params").unwrap_or(&Value::Null);
        if s(params, "type") == Some("test_request") {
            return Signal::Reply(
                json!({"jsonrpc": "2.0", "id": 9_000_000_001u64, "method": "public/test", "params": {}})
                    .to_string(),
            );
        }
        return Signal::Other;
    }
    let id = id_of(v, "id");
    if let Some(e) = v.get("error") {
        return Signal::Reject {
            id,
            keys: Vec::new(),
            reason: s(e, "message").map_or_else(|| reason(e), str::to_owned),
        };
    }
    match v.get("result") {
        Some(Value::Array(chans)) => Signal::Ack {
            id,
            keys: chans
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            complete: true,
        },
        _ => Signal::Other,
    }
}

fn bitmex(v: &Value) -> Signal {
    // The welcome message counts the connects left: `{"info":"Welcome to the BitMEX Realtime
    // API.",…,"limit":{"remaining":719}}`.
    if let Some(left) = v
        .get("limit")
        .and_then(|l| l.get("remaining"))
        .and_then(Value::as_u64)
    {
        return Signal::ConnectsLeft(left);
    }
    if let Some(table) = s(v, "table") {
        let sym = v
            .get("data")
            .and_then(|d| d.get(0))
            .and_then(|d| s(d, "symbol"))
            .or_else(|| v.get("filter").and_then(|f| s(f, "symbol")));
        return match sym {
            Some(sym) => Signal::Data(Some(format!("{table}:{sym}"))),
            // The `liquidation` partial answers each subscription with `"filter":{}` and
            // `"data":[]` (a 2024 recording of wss://ws.bitmex.com/realtime): it names the table
            // only, and speaks for its topics.
            None => Signal::DataOfPrefix(format!("{table}:")),
        };
    }
    if let Some(topic) = s(v, "subscribe")
        && v.get("success").and_then(Value::as_bool) == Some(true)
    {
        return Signal::Ack {
            id: None,
            keys: vec![topic.to_owned()],
            complete: false,
        };
    }
    if let Some(e) = v.get("error") {
        let args = v
            .get("request")
            .and_then(|r| r.get("args"))
            .and_then(Value::as_array);
        return Signal::Reject {
            id: None,
            keys: args
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            reason: reason(e),
        };
    }
    Signal::Other
}

/// `type:coin`, or `type.interval:coin` for a subscription with an interval (candles).
fn hyperliquid_key(kind: &str, interval: Option<&str>, coin: &str) -> String {
    match interval {
        Some(i) => format!("{kind}.{i}:{coin}"),
        None => format!("{kind}:{coin}"),
    }
}

fn hyperliquid(v: &Value) -> Signal {
    let data = v.get("data").unwrap_or(&Value::Null);
    match s(v, "channel") {
        Some("subscriptionResponse") => {
            let sub = data.get("subscription").unwrap_or(&Value::Null);
            let key = match (s(sub, "type"), s(sub, "coin")) {
                (Some(kind), Some(coin)) => vec![hyperliquid_key(kind, s(sub, "interval"), coin)],
                _ => Vec::new(),
            };
            Signal::Ack {
                id: None,
                keys: key,
                complete: false,
            }
        }
        Some("error") => Signal::Reject {
            id: None,
            keys: Vec::new(),
            reason: reason(data),
        },
        Some("pong") | None => Signal::Other,
        // A candle names its coin `s` and its interval `i`, not `coin` (WsCandle in
        // hyperliquid.gitbook.io, for-developers/api/websocket/subscriptions).
        Some("candle") => {
            Signal::Data(s(data, "s").map(|coin| hyperliquid_key("candle", s(data, "i"), coin)))
        }
        Some(c) => Signal::Data(find_str(data, "coin").map(|coin| format!("{c}:{coin}"))),
    }
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
