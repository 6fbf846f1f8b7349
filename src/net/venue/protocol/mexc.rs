//! MEXC spot v3 (`wss://wbs-api.mexc.com/ws`): topics are MEXC's own stream names
//! (`spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT`), subscribed with
//! `{"method":"SUBSCRIPTION","params":[…]}`; acks and pongs are JSON text
//! (`{"id":0,"code":0,"msg":"<streams, comma-separated>"}`, `"msg":"PONG"`), a refusal names its
//! streams in `"msg":"Not Subscribed successfully! [a,b].  Reason： Blocked! "`, and data comes
//! in binary frames, protobuf `PushDataV3ApiWrapper` messages whose field 1 (`channel`) names
//! the stream (<https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams>;
//! the schema: <https://github.com/mexcdevelop/websocket-proto>).
//!
//! The channel is read with `prost` from a message declared here with only the fields needed
//! ([`Push`]): prost skips the body (fields 301-315) without decoding it. Binary frames are read
//! only while a topic waits for its first data; in steady state they are data unread.

use std::borrow::Cow;

use serde_json::{Value, json};

use super::{Binary, Outgoing, Protocol, Signal, Topic, parsed, s};

pub(super) const PROTOCOL: Protocol = Protocol {
    check,
    key: super::same_key,
    subscribe,
    needs_look,
    classify,
    binary,
};

/// The part of MEXC's `PushDataV3ApiWrapper` wsrec reads: the stream it belongs to.
#[derive(Clone, PartialEq, prost::Message)]
struct Push {
    /// The stream name, as subscribed.
    #[prost(string, tag = "1")]
    channel: String,
}

/// The part of an `aggre.depth` push wsrec reads for a book's start: its
/// `publicAggreDepths` body (field 313).
#[derive(Clone, PartialEq, prost::Message)]
struct DepthPush {
    /// `PublicAggreDepthsV3Api`.
    #[prost(message, optional, tag = "313")]
    depths: Option<DepthVersions>,
}

/// The versions of a `PublicAggreDepthsV3Api` body: the first update the push covers (field
/// 4, ASCII digits; `toVersion`, field 5, is the last).
#[derive(Clone, PartialEq, prost::Message)]
struct DepthVersions {
    /// `fromVersion`.
    #[prost(string, tag = "4")]
    from_version: String,
}

/// The stream prefix of the incremental depth topics.
const AGGRE_DEPTH: &str = "spot@public.aggre.depth.v3.api.pb@";

/// The REST symbol of an incremental depth topic
/// (`spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT` → `BTCUSDT`); `None` for other streams.
pub fn aggre_depth_symbol(topic: &str) -> Option<String> {
    let (_speed, symbol) = topic.strip_prefix(AGGRE_DEPTH)?.split_once('@')?;
    (!symbol.is_empty() && !symbol.contains('@')).then(|| symbol.to_owned())
}

/// The first version (`fromVersion`) an `aggre.depth` push covers; `None` for other frames
/// (JSON replies, other bodies).
pub fn aggre_depth_first_id(frame: &[u8]) -> Option<u64> {
    let push = <DepthPush as prost::Message>::decode(frame).ok()?;
    push.depths?.from_version.parse().ok()
}

fn check(topic: &str) -> Result<(), String> {
    let shape = "spot@public.NAME.v3.api.pb@…@SYMBOL, e.g. spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT (MEXC's protobuf streams)";
    match topic
        .strip_prefix("spot@public.")
        .and_then(|r| r.split_once(".v3.api.pb@"))
    {
        Some((name, rest)) if !name.is_empty() && !rest.is_empty() => Ok(()),
        _ => Err(format!("expected {shape}")),
    }
}

fn subscribe(topics: &[Topic], per_msg: usize, _next_id: &mut u64) -> Vec<Outgoing> {
    topics
        .chunks(per_msg)
        .map(|chunk| {
            let m = json!({"method": "SUBSCRIPTION", "params": chunk});
            Outgoing::new(&m, chunk.to_vec(), None)
        })
        .collect()
}

fn needs_look(msg: &[u8]) -> bool {
    super::has(msg, r#""msg""#)
}

fn classify(msg: &[u8]) -> Signal {
    parsed(msg, signal)
}

/// The streams a `msg` lists, comma-separated.
fn streams(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn signal(v: &Value) -> Signal {
    let Some(msg) = s(v, "msg") else {
        return Signal::Other;
    };
    if msg == "PONG" {
        return Signal::Other;
    }
    if let Some(rest) = msg.strip_prefix("Not Subscribed successfully!") {
        let named = rest
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .map_or(Vec::new(), |(list, _)| streams(list));
        return Signal::Reject {
            id: None,
            keys: named,
            reason: msg.trim().to_owned(),
        };
    }
    if v.get("code").and_then(Value::as_i64) != Some(0) {
        return Signal::Reject {
            id: None,
            keys: Vec::new(),
            reason: format!("code {}: {msg}", v.get("code").unwrap_or(&Value::Null)),
        };
    }
    Signal::Ack {
        id: None,
        keys: streams(msg),
        complete: false,
    }
}

/// A data frame: its stream read from field 1 while a topic waits; else data unread. A frame
/// that is no protobuf of that shape but JSON text is read as text.
fn binary(frame: &[u8], look: bool) -> Binary<'_> {
    if !look {
        return Binary::Data;
    }
    if frame.first() == Some(&b'{') {
        return Binary::Text(Cow::Borrowed(frame));
    }
    match <Push as prost::Message>::decode(frame) {
        Ok(p) if !p.channel.is_empty() => Binary::Signal(Signal::Data(Some(p.channel))),
        _ => Binary::Data,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Family, binary as read_binary, classify, needs_look, subscribe_messages};
    use super::*;

    /// A push as MEXC frames it (`PushDataV3ApiWrapper`): the stream and a body
    /// (`publicAggreDeals`, field 314) kept encoded; tests/venues/mexc.rs builds full ones.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Wrapper {
        #[prost(string, tag = "1")]
        channel: String,
        #[prost(bytes = "vec", optional, tag = "314")]
        public_aggre_deals: Option<Vec<u8>>,
    }

    const DEALS: &str = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT";

    fn deals_frame() -> Vec<u8> {
        let w = Wrapper {
            channel: DEALS.into(),
            // deals { price: "93220.00" }: field 1 (a deal), its field 1 (the price).
            public_aggre_deals: Some(b"\x0a\x0a\x0a\x0893220.00".to_vec()),
        };
        prost::Message::encode_to_vec(&w)
    }

    #[test]
    fn subscriptions_acks_refusals_and_pongs() {
        let topics = vec![
            DEALS.to_owned(),
            "spot@public.limit.depth.v3.api.pb@BTCUSDT@5".to_owned(),
        ];
        let m = subscribe_messages(Family::Mexc, &topics, 30, &mut 1);
        assert_eq!(
            m[0].text,
            r#"{"method":"SUBSCRIPTION","params":["spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT","spot@public.limit.depth.v3.api.pb@BTCUSDT@5"]}"#
        );
        assert_eq!(m.len(), 1);
        let c = |t: &str| classify(Family::Mexc, t.as_bytes());
        assert_eq!(
            c(r#"{"id":0,"code":0,"msg":"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"}"#),
            Signal::Ack {
                id: None,
                keys: vec![DEALS.into()],
                complete: false
            }
        );
        assert_eq!(
            c(r#"{"id":0,"code":0,"msg":"Not Subscribed successfully! [spot@public.kline.v3.api.pb@BTCUSDT@Min60,spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT].  Reason： Blocked! "}"#),
            Signal::Reject {
                id: None,
                keys: vec!["spot@public.kline.v3.api.pb@BTCUSDT@Min60".into(), DEALS.into()],
                reason: "Not Subscribed successfully! [spot@public.kline.v3.api.pb@BTCUSDT@Min60,spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT].  Reason： Blocked!".into()
            }
        );
        assert_eq!(c(r#"{"id":0,"code":0,"msg":"PONG"}"#), Signal::Other);
        assert!(needs_look(
            Family::Mexc,
            br#"{"id":0,"code":0,"msg":"PONG"}"#
        ));
        assert!(check(DEALS).is_ok());
        assert!(check("spot@public.aggre.deals.v3.api@BTCUSDT").is_err());
        assert!(check("spot@public.kline.v3.api.pb@").is_err());
    }

    #[test]
    fn the_stream_of_a_protobuf_frame_is_read_while_waiting_only() {
        let frame = deals_frame();
        assert_eq!(
            read_binary(Family::Mexc, &frame, true),
            Binary::Signal(Signal::Data(Some(DEALS.into())))
        );
        assert_eq!(read_binary(Family::Mexc, &frame, false), Binary::Data);
        // Not a protobuf of that shape: data that cannot be told.
        assert_eq!(
            read_binary(Family::Mexc, &[0xff, 0xff, 0xff], true),
            Binary::Data
        );
    }
}
