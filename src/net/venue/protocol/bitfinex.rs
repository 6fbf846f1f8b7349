//! Bitfinex v2: topics `channel:SYMBOL` (`trades:tBTCUSD`, candles `candles:trade:1m:tBTCUSD`);
//! the venue answers each subscription with a channel id, and data frames are arrays that start
//! with that id.

use serde_json::{Value, json};

use super::{Outgoing, Protocol, Signal, Topic, parsed, reason, s, two};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary: super::binary_is_data,
};

/// Candles are keyed `trade:TIMEFRAME:SYMBOL`; a bare symbol is refused.
fn check(topic: &str) -> Result<(), String> {
    match topic.strip_prefix("candles:") {
        Some(key) if key.split(':').filter(|p| !p.is_empty()).count() < 3 => Err(
            "candles take a key trade:TIMEFRAME:SYMBOL, e.g. candles:trade:1m:tBTCUSD".to_owned(),
        ),
        _ => two(topic, ':', "channel:SYMBOL"),
    }
}

fn subscribe(topics: &[Topic], _per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    // First the flags, as Bitfinex's own clients send them right after connecting: a
    // sequence number at the end of every channel message (SEQ_ALL) and a checksum
    // message after every book change (OB_CHECKSUM), so `verify` can check them.
    let conf = json!({"event": "conf", "flags": FLAGS});
    let mut out = vec![Outgoing::new(&conf, Vec::new(), None)];
    for t in topics {
        let (c, s) = t.split_once(':').unwrap_or((t, ""));
        let m = if c == "candles" {
            json!({"event": "subscribe", "channel": c, "key": s})
        } else {
            json!({"event": "subscribe", "channel": c, "symbol": s})
        };
        out.push(Outgoing::new(&m, vec![t.clone()], None));
    }
    out
}

fn needs_look(msg: &[u8]) -> bool {
    msg.first() == Some(&b'{')
}

fn classify(msg: &[u8]) -> Signal {
    if msg.first() == Some(&b'[') {
        return data(msg);
    }
    parsed(msg, signal)
}

/// Bitfinex `conf` flags: SEQ_ALL (65536) | OB_CHECKSUM (131072), as bitfinex-api-node's
/// `WSv2.flags` and bfx-api-node-core's `FLAGS` define them.
pub const FLAGS: u64 = 65_536 | 131_072;

/// How long a Bitfinex maintenance (info 20060) lasts at most, by its documentation.
pub const MAINTENANCE: std::time::Duration = std::time::Duration::from_secs(120);

fn key(v: &Value) -> Option<String> {
    let channel = s(v, "channel")?;
    let sym = if channel == "candles" {
        s(v, "key")?
    } else {
        s(v, "symbol")?
    };
    Some(format!("{channel}:{sym}"))
}

fn signal(v: &Value) -> Signal {
    match s(v, "event") {
        Some("subscribed") => match (v.get("chanId").and_then(Value::as_i64), key(v)) {
            (Some(id), Some(key)) => Signal::Channel { id, key },
            _ => Signal::Other,
        },
        Some("error") => Signal::Reject {
            id: None,
            keys: key(v).into_iter().collect(),
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
                    at_most: MAINTENANCE,
                },
                _ => Signal::Other,
            }
        }
        _ => Signal::Other,
    }
}

/// `[chanId, …]`: only the channel id is read (the frame may be megabytes of book).
fn data(msg: &[u8]) -> Signal {
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
