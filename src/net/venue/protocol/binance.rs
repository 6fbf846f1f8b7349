//! Binance spot, USDⓈ-M and COIN-M combined streams: topics `symbol@stream`
//! (`btcusdt@aggTrade`) or `!stream` for an all-market stream; named in the connection URL where
//! they fit ([`url_streams`]), else in `SUBSCRIBE` messages with an `id` the venue echoes.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, id_of, parsed, reason, s, take_id};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: stream,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

/// All-market streams have no symbol: `!bookTicker`, `!forceOrder@arr`.
fn check(topic: &str) -> Result<(), String> {
    match topic.strip_prefix('!') {
        Some(name) if !name.is_empty() && !name.starts_with('@') => Ok(()),
        Some(_) => Err("expected !stream (an all-market stream)".to_owned()),
        None => match topic.split_once('@') {
            Some((sym, stream)) if !sym.is_empty() && !stream.is_empty() && !stream.starts_with('!') => Ok(()),
            _ => Err("expected symbol@stream, or !stream for an all-market stream (those go in `topics`, not `channels`)".to_owned()),
        },
    }
}

/// A Binance stream name: the symbol lowercase, the stream type as given (`btcusdt@aggTrade`);
/// an all-market stream (`!forceOrder@arr`) exactly as given, as stream names are
/// case-sensitive.
fn stream(topic: &str) -> String {
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
pub(super) fn url_streams(url: &str, topics: &[Topic]) -> (String, usize) {
    if url.contains('?') || !url.ends_with("/stream") {
        return (url.to_owned(), 0);
    }
    let mut out = format!("{url}?streams=");
    let mut named = 0;
    for t in topics {
        let stream = stream(t);
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

/// The REST symbol of a diff depth stream's topic (`btcusdt@depth@100ms` → `BTCUSDT`,
/// `btcusd_perp@depth` → `BTCUSD_PERP`): `depth` alone or with an update speed (`@100ms`,
/// `@250ms`, `@500ms`); `None` for every other stream, partial depth (`depth20@100ms`)
/// included, as those send whole books.
pub fn depth_symbol(topic: &str) -> Option<String> {
    let (symbol, stream) = topic.split_once('@')?;
    let speed = stream.strip_prefix("depth")?;
    let is_speed = |s: &str| {
        s.strip_prefix('@')
            .and_then(|s| s.strip_suffix("ms"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    (!symbol.is_empty() && !symbol.starts_with('!') && (speed.is_empty() || is_speed(speed)))
        .then(|| symbol.to_ascii_uppercase())
}

/// The first update ID (`U`) of a `depthUpdate` message, alone or wrapped by the combined
/// stream (`{"stream":..,"data":{..}}`).
pub fn depth_first_id(msg: &[u8]) -> Option<u64> {
    super::u64_field(msg, "U")
}

/// The update ID a REST depth snapshot is current to (`lastUpdateId`).
pub fn depth_snapshot_id(body: &[u8]) -> Option<u64> {
    super::u64_field(body, "lastUpdateId")
}

fn subscribe(topics: &[Topic], per_msg: usize, next_id: &mut u64) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for chunk in topics.chunks(per_msg) {
        let id = take_id(next_id);
        let params: Vec<String> = chunk.iter().map(|t| stream(t)).collect();
        let m = json!({"method": "SUBSCRIBE", "params": params, "id": id});
        out.push(Outgoing::new(&m, chunk.to_vec(), Some(id)));
    }
    out
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""id":"#) || super::has(msg, "serverShutdown")
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

fn signal(v: &Value) -> Signal {
    if let Some(name) = s(v, "stream") {
        return Signal::Data(Some(stream(name)));
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
