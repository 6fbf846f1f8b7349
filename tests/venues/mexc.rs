//! MEXC spot v3 against a fake that keeps MEXC's rules
//! (https://mexcdevelop.github.io/apidocs/spot_v3_en/#websocket-market-streams): JSON
//! `SUBSCRIPTION` acknowledged in text, at most 30 subscriptions per connection (more are refused
//! with "Not Subscribed successfully! [...]. Reason： Blocked!"), a connection without data or a
//! `PING` for a minute is closed, every connection is cut after 24 hours, and data comes as
//! protobuf `PushDataV3ApiWrapper` messages in binary frames (schema:
//! https://github.com/mexcdevelop/websocket-proto; a frame of each stream kind is built here
//! with the fields and numbers of those `.proto` files).

use prost::Message as _;

use super::*;

/// A depth level (`PublicAggreDepthV3ApiItem`, `PublicLimitDepthV3ApiItem`).
#[derive(Clone, PartialEq, prost::Message)]
struct Level {
    #[prost(string, tag = "1")]
    price: String,
    #[prost(string, tag = "2")]
    quantity: String,
}

/// `PublicAggreDealsV3ApiItem`.
#[derive(Clone, PartialEq, prost::Message)]
struct Deal {
    #[prost(string, tag = "1")]
    price: String,
    #[prost(string, tag = "2")]
    quantity: String,
    #[prost(int32, tag = "3")]
    trade_type: i32,
    #[prost(int64, tag = "4")]
    time: i64,
}

/// `PublicAggreDealsV3Api`.
#[derive(Clone, PartialEq, prost::Message)]
struct Deals {
    #[prost(message, repeated, tag = "1")]
    deals: Vec<Deal>,
    #[prost(string, tag = "2")]
    event_type: String,
}

/// `PublicAggreDepthsV3Api` (and, with `version` in field 4, `PublicLimitDepthsV3Api`).
#[derive(Clone, PartialEq, prost::Message)]
struct Depths {
    #[prost(message, repeated, tag = "1")]
    asks: Vec<Level>,
    #[prost(message, repeated, tag = "2")]
    bids: Vec<Level>,
    #[prost(string, tag = "3")]
    event_type: String,
    #[prost(string, tag = "4")]
    from_version: String,
}

/// `PublicAggreBookTickerV3Api`.
#[derive(Clone, PartialEq, prost::Message)]
struct BookTicker {
    #[prost(string, tag = "1")]
    bid_price: String,
    #[prost(string, tag = "2")]
    bid_quantity: String,
    #[prost(string, tag = "3")]
    ask_price: String,
    #[prost(string, tag = "4")]
    ask_quantity: String,
}

/// `PublicSpotKlineV3Api`.
#[derive(Clone, PartialEq, prost::Message)]
struct Kline {
    #[prost(string, tag = "1")]
    interval: String,
    #[prost(int64, tag = "2")]
    window_start: i64,
    #[prost(string, tag = "3")]
    opening_price: String,
    #[prost(string, tag = "4")]
    closing_price: String,
}

/// `PushDataV3ApiWrapper`: the stream, the symbol, the send time, and one body by stream kind.
#[derive(Clone, PartialEq, prost::Message)]
struct Wrapper {
    #[prost(string, tag = "1")]
    channel: String,
    #[prost(string, optional, tag = "3")]
    symbol: Option<String>,
    #[prost(int64, optional, tag = "6")]
    send_time: Option<i64>,
    #[prost(message, optional, tag = "303")]
    public_limit_depths: Option<Depths>,
    #[prost(message, optional, tag = "308")]
    public_spot_kline: Option<Kline>,
    #[prost(message, optional, tag = "313")]
    public_aggre_depths: Option<Depths>,
    #[prost(message, optional, tag = "314")]
    public_aggre_deals: Option<Deals>,
    #[prost(message, optional, tag = "315")]
    public_aggre_book_ticker: Option<BookTicker>,
}

/// The push MEXC sends for `stream` as its `n`th message (`n` is the send time).
fn push(stream: &str, n: u64) -> Wrapper {
    let symbol = stream
        .split('@')
        .find(|p| p.ends_with("USDT"))
        .map(str::to_owned);
    let kind = stream.split('@').nth(1).unwrap_or("");
    let event_type = stream
        .rsplit_once('@')
        .map_or(stream, |(h, _)| h)
        .to_owned();
    let level = |p: &str| Level {
        price: p.into(),
        quantity: "0.5".into(),
    };
    let depths = || Depths {
        asks: vec![level("93220.01")],
        bids: vec![level("93220.00")],
        event_type: event_type.clone(),
        from_version: n.to_string(),
    };
    let mut w = Wrapper {
        channel: stream.to_owned(),
        symbol,
        send_time: Some(n as i64),
        ..Wrapper::default()
    };
    match kind {
        "public.aggre.deals.v3.api.pb" => {
            w.public_aggre_deals = Some(Deals {
                deals: vec![Deal {
                    price: "93220.00".into(),
                    quantity: "0.04438243".into(),
                    trade_type: 2,
                    time: n as i64,
                }],
                event_type,
            });
        }
        "public.aggre.depth.v3.api.pb" => w.public_aggre_depths = Some(depths()),
        "public.limit.depth.v3.api.pb" => w.public_limit_depths = Some(depths()),
        "public.aggre.bookTicker.v3.api.pb" => {
            w.public_aggre_book_ticker = Some(BookTicker {
                bid_price: "93220.00".into(),
                bid_quantity: "0.5".into(),
                ask_price: "93220.01".into(),
                ask_quantity: "0.7".into(),
            });
        }
        "public.kline.v3.api.pb" => {
            w.public_spot_kline = Some(Kline {
                interval: "Min1".into(),
                window_start: n as i64,
                opening_price: "93200".into(),
                closing_price: "93220".into(),
            });
        }
        _ => {}
    }
    w
}

/// How the fake puts a frame on the wire: `pb:STREAM|N` is that push in a binary frame, the
/// rest (acks, pongs, refusals) JSON text.
fn mexc_frame(f: String) -> Message {
    match f.strip_prefix("pb:").and_then(|r| r.rsplit_once('|')) {
        Some((stream, n)) => Message::binary(push(stream, n.parse().unwrap()).encode_to_vec()),
        None => Message::text(f),
    }
}

/// The stream and send time of every protobuf push recorded (`bin`).
fn pushes(recs: &[Value]) -> Vec<(String, u64)> {
    recs.iter()
        .filter_map(|r| r.get("bin")?.as_str())
        .map(|b64| {
            let b =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
            let w = Wrapper::decode(&b[..]).unwrap();
            (w.channel, w.send_time.unwrap() as u64)
        })
        .collect()
}

/// MEXC's answer: `PING` → `PONG`; `SUBSCRIPTION` acknowledged with its streams, those past 30
/// on the connection refused.
fn mexc_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let v = parse(t);
    match v["method"].as_str() {
        Some("PING") => vec![json!({"id":0,"code":0,"msg":"PONG"}).to_string()],
        Some("SUBSCRIPTION") => {
            let (mut ok, mut refused) = (Vec::new(), Vec::new());
            for s in strings(&v["params"]) {
                if st.streams.len() < 30 {
                    st.streams.push(s.clone());
                    ok.push(s);
                } else {
                    refused.push(s);
                }
            }
            st.subscribed |= !ok.is_empty();
            let mut out = Vec::new();
            if !ok.is_empty() {
                out.push(json!({"id":0,"code":0,"msg":ok.join(",")}).to_string());
            }
            if !refused.is_empty() {
                let msg = format!(
                    "Not Subscribed successfully! [{}].  Reason： Blocked! ",
                    refused.join(",")
                );
                out.push(json!({"id":0,"code":0,"msg":msg}).to_string());
            }
            out
        }
        _ => Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn mexc_spreads_forty_streams_over_two_connections_pings_a_quiet_feed_and_replaces_them_before_a_day()
 {
    let venue = FakeVenue::start(Venue {
        answer: mexc_answer,
        // No data and no PING for a minute: closed. A quiet market: a push every 90 s.
        keeps_alive: |i| matches!(i, Incoming::Text(t) if t.contains("PING")),
        idle_limit: Some(Duration::from_secs(60)),
        sends_keep_alive: true,
        lifetime: Some(Duration::from_secs(24 * 3600)),
        data: |n, st| st.streams.iter().map(|s| format!("pb:{s}|{n}")).collect(),
        data_every: Duration::from_secs(90),
        encode: mexc_frame,
        ..quiet_venue()
    })
    .await;
    let symbols: Vec<String> = (0..40).map(|i| format!("\"S{i:02}USDT\"")).collect();
    let (recs, _) = record_for(
        &format!(
            "venue = \"mexc-spot\"\nurl = \"{}\"\nchannels = [\"aggre.deals@100ms\"]\nsymbols = [{}]",
            venue.url("/ws"),
            symbols.join(", ")
        ),
        Duration::from_secs(24 * 3600 + 1200),
    )
    .await;
    venue.assert_never_closed("mexc-spot");
    // 30 + 10 streams, each connection replaced once.
    assert_eq!(venue.connections(), 4);
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert!(events(&recs, "subscription_silent").is_empty());
    let first = venue.texts(1);
    assert!(
        first[0].starts_with(r#"{"method":"SUBSCRIPTION","params":["spot@public.aggre.deals.v3.api.pb@100ms@S00USDT","#),
        "{first:?}"
    );
    let pings = first
        .iter()
        .filter(|t| *t == r#"{"method":"PING"}"#)
        .count();
    assert!(pings > 4000, "{pings} pings in a day");
    let connected = events(&recs, "connected");
    assert_eq!(connected.len(), 4);
    assert!(connected[2..].iter().all(|c| c.get("replaces").is_some()));
    // Every push of one stream over the day, the frames recorded byte for byte.
    let s07 = "spot@public.aggre.deals.v3.api.pb@100ms@S07USDT";
    let ticks: BTreeSet<u64> = pushes(&recs)
        .into_iter()
        .filter(|(c, _)| c == s07)
        .map(|(_, n)| n)
        .collect();
    assert_contiguous(&ticks, 24 * 40);
    let n = *ticks.first().unwrap();
    let want = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        push(s07, n).encode_to_vec(),
    );
    assert!(
        recs.iter()
            .any(|r| r.get("bin") == Some(&Value::from(want.clone())))
    );
    let mut ends = reasons(&recs);
    ends.sort();
    assert_eq!(ends, ["replaced", "replaced", "shutdown", "shutdown"]);
}

/// MEXC's answer for the liveness test: the ack, then a push of each stream.
fn mexc_live_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    let mut out = mexc_answer(t, st);
    let v = parse(t);
    if v["method"] == "SUBSCRIPTION" {
        out.extend(
            strings(&v["params"])
                .iter()
                .filter_map(|s| mexc_live_frame(s)),
        );
    }
    out
}

/// A push of `topic` (one of the stream kinds MEXC documents).
fn mexc_live_frame(topic: &str) -> Option<String> {
    Some(format!("pb:{topic}|1736417034332"))
}

/// The MEXC fake for [`every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "mexc-spot").then_some(Live {
        symbol: "BTCUSDT",
        answer: mexc_live_answer,
        frame: mexc_live_frame,
        encode: mexc_frame,
    })
}
