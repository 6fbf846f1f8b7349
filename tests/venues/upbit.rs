//! Upbit quotation against a fake that keeps Upbit's rules: one JSON request carries a
//! connection's subscriptions, and a new request replaces them; no ack; data is JSON in binary
//! frames; a connection idle for 120 s (nothing sent or received) is closed; more than 5 client
//! messages in a second close it; connects are limited to 5 per second and 100 per minute per IP
//! (https://docs.upbit.com/kr/reference/websocket-guide, https://docs.upbit.com/reference/connection,
//! https://docs-e.upbit.com/docs/user-request-guide). Frame shapes: the examples of Upbit's
//! documentation (DEFAULT format).

use super::*;

/// How Upbit puts every frame on the wire: JSON in a binary frame.
fn json_in_binary(f: String) -> Message {
    Message::binary(f.into_bytes())
}

/// The recorded binary messages (`bin`) as the JSON they hold, in `msg`, for the rig's helpers.
fn decoded(recs: &[Value]) -> Vec<Value> {
    recs.iter()
        .map(|r| {
            let Some(b64) = r.get("bin").and_then(Value::as_str) else {
                return r.clone();
            };
            let b =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
            let mut r = r.clone();
            r["msg"] = serde_json::from_slice(&b).unwrap();
            r
        })
        .collect()
}

/// One frame of Upbit's real shape for `type:code`, carrying tick `n` (documentation examples).
fn upbit_frame(topic: &str, n: u64) -> Option<String> {
    let (kind, code) = topic.split_once(':')?;
    let code = code.split_once('.').map_or(code, |(c, _)| c);
    let body = match kind {
        "trade" => format!(
            r#""timestamp":{n},"trade_date":"2023-02-21","trade_time":"07:41:02","trade_timestamp":1676965262139,"trade_price":31883000.00000000,"trade_volume":0.03231211,"ask_bid":"ASK","prev_closing_price":31909000.00000000,"change":"FALL","change_price":26000.00000000,"sequential_id":{n},"stream_type":"REALTIME""#
        ),
        "orderbook" => format!(
            r#""timestamp":{n},"total_ask_size":4.79158413,"total_bid_size":2.65609625,"orderbook_units":[{{"ask_price":33269000,"bid_price":33252000,"ask_size":0.0251,"bid_size":0.0183}}],"stream_type":"REALTIME","level":0"#
        ),
        "ticker" => format!(
            r#""opening_price":31883000,"high_price":32310000,"low_price":31855000,"trade_price":32287000,"prev_closing_price":31883000.00000000,"change":"RISE","change_price":404000.00000000,"signed_change_price":404000.00000000,"change_rate":0.0126713295,"trade_volume":0.03103806,"acc_trade_volume":1843.78,"trade_date":"20230221","trade_time":"074102","trade_timestamp":1676965262139,"acc_ask_volume":1007.8,"acc_bid_volume":835.9,"market_state":"ACTIVE","is_trading_suspended":false,"market_warning":"NONE","timestamp":{n},"stream_type":"REALTIME""#
        ),
        k if k.starts_with("candle.") => format!(
            r#""candle_date_time_utc":"2025-01-02T04:28:00","candle_date_time_kst":"2025-01-02T13:28:00","opening_price":142009000.00000000,"high_price":142009000.00000000,"low_price":142009000.00000000,"trade_price":142009000.00000000,"candle_acc_trade_volume":0.00606119,"candle_acc_trade_price":860743.5307100000,"timestamp":{n},"stream_type":"REALTIME""#
        ),
        _ => return None,
    };
    Some(format!(r#"{{"type":"{kind}","code":"{code}",{body}}}"#))
}

/// Upbit's answer: `PING` → `{"status":"UP"}`; a request replaces the subscriptions (the
/// `type:code` of each of its entries) and is answered with a snapshot of each (no ack);
/// anything else is an error.
fn upbit_answer(t: &str, st: &mut ConnState) -> Vec<String> {
    if t == "PING" {
        return vec![r#"{"status":"UP"}"#.to_owned()];
    }
    let v = parse(t);
    let Some(entries) = v
        .as_array()
        .filter(|a| a.iter().any(|e| e.get("ticket").is_some()))
    else {
        return vec![
            json!({"error":{"name":"WRONG_FORMAT","message":"요청 형식이 올바르지 않습니다."}})
                .to_string(),
        ];
    };
    st.streams = entries
        .iter()
        .filter_map(|e| Some((e["type"].as_str()?, e.get("codes")?)))
        .flat_map(|(kind, codes)| {
            strings(codes)
                .into_iter()
                .map(move |c| format!("{kind}:{c}"))
        })
        .collect();
    st.subscribed = !st.streams.is_empty();
    // A snapshot of each topic first (Upbit's default: snapshot, then the real-time stream).
    st.streams
        .iter()
        .filter_map(|t| upbit_frame(t, 0))
        .collect()
}

/// Upbit with its idle and message rules: every subscribed topic delivers once every
/// `data_every`.
fn upbit_venue() -> Venue {
    Venue {
        answer: upbit_answer,
        // Idle: nothing sent or received for 120 s (pings and data count).
        idle_limit: Some(Duration::from_secs(120)),
        sends_keep_alive: true,
        max_per_sec: Some(5),
        data: |n, st| {
            st.streams
                .iter()
                .filter_map(|t| upbit_frame(t, n))
                .collect()
        },
        data_every: Duration::from_secs(300),
        encode: json_in_binary,
        ..quiet_venue()
    }
}

#[tokio::test(start_paused = true)]
async fn upbit_subscribes_everything_in_one_request_and_pings_a_quiet_market_past_the_idle_cut() {
    // A quiet market: something every 5 minutes after the snapshots.
    let venue = FakeVenue::start(upbit_venue()).await;
    let (recs, _) = record_preset(
        "upbit",
        &venue,
        "/websocket/v1",
        r#"["trade:KRW-BTC", "orderbook:KRW-BTC", "trade:KRW-ETH", "candle.1m:KRW-BTC"]"#,
        Duration::from_secs(3600),
    )
    .await;
    venue.assert_never_closed("upbit");
    assert_eq!(venue.connections(), 1);
    // One request, which a second one would have replaced.
    assert_eq!(
        venue.texts(1),
        [
            r#"[{"ticket":"wsrec-1"},{"type":"trade","codes":["KRW-BTC","KRW-ETH"]},{"type":"orderbook","codes":["KRW-BTC"]},{"type":"candle.1m","codes":["KRW-BTC"]},{"format":"DEFAULT"}]"#
        ]
    );
    let pings = venue.seen().iter().filter(|s| s.what == "ping").count();
    assert!((115..=120).contains(&pings), "{pings} pings in an hour");
    // JSON in binary frames, recorded as received and byte for byte.
    assert!(recs.iter().all(|r| r.get("msg").is_none()));
    let want = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        upbit_frame("candle.1m:KRW-BTC", 6).unwrap(),
    );
    assert!(recs.iter().any(|r| r["bin"] == want.as_str()));
    let plain = decoded(&recs);
    let delivered: BTreeSet<String> = plain
        .iter()
        .filter_map(|r| {
            let m = r.get("msg")?;
            Some(format!("{}:{}", m["type"].as_str()?, m["code"].as_str()?))
        })
        .collect();
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    assert!(events(&recs, "subscription_silent").is_empty());
    assert!(events(&recs, "subscription_rejected").is_empty());
    assert_eq!(reasons(&recs), ["shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn upbit_shards_cut_every_two_seconds_reconnect_inside_the_connect_limits() {
    // 20 shards whose connections the venue ends after 2 s: without the budget they would
    // reconnect about 400 times a minute; Upbit allows 5 a second and 100 a minute.
    let venue = FakeVenue::start(Venue {
        lifetime: Some(Duration::from_secs(2)),
        data_every: Duration::from_millis(500),
        ..upbit_venue()
    })
    .await;
    let topics: Vec<String> = (0..20).map(|i| format!("\"trade:KRW-C{i:02}\"")).collect();
    record_for(
        &format!(
            "venue = \"upbit\"\nurl = \"{}\"\nmax_topics_per_connection = 1\ntopics = [{}]",
            venue.url("/websocket/v1"),
            topics.join(", ")
        ),
        Duration::from_secs(300),
    )
    .await;
    let opens = venue.opens();
    let per_minute = busiest_window(&opens, Duration::from_secs(60));
    assert!(per_minute <= 100, "{per_minute} connects in a minute");
    assert!(per_minute >= 60, "the storm was real: {per_minute}");
    let per_second = busiest_window(&opens, Duration::from_secs(1));
    assert!(per_second <= 5, "{per_second} connects in a second");
}

/// The Upbit fake for [`every_channel_of_every_preset_counts_as_live_on_a_frame_of_the_venues_shape`].
pub(super) fn live(preset: &str) -> Option<Live> {
    (preset == "upbit").then_some(Live {
        symbol: "KRW-BTC",
        answer: upbit_answer,
        frame: |t| upbit_frame(t, 0),
        encode: json_in_binary,
    })
}
