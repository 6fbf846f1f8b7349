//! End-to-end tests of `wsrec record` in-process: a real recorder against a real WebSocket
//! server on 127.0.0.1:0, real files, tokio's paused time for timeouts, backoff and rotation.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use wsrec::Format;

const SUB_A: &str = r#"{"op":"subscribe","args":["a"]}"#;
const SUB_B: &str = r#"{"op":"subscribe","args":["b"]}"#;

#[tokio::test(start_paused = true)]
async fn records_messages_byte_for_byte_with_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.subscribe = vec![
        wsrec::config::OutMessage(SUB_A.into()),
        wsrec::config::OutMessage(SUB_B.into()),
    ];
    let rec = start(config(dir.path(), vec![s]), BASE_NS);

    let mut conn = server.accept().await;
    assert_eq!(conn.path, "/feed");
    assert_eq!(conn.recv_text().await, SUB_A);
    assert_eq!(conn.recv_text().await, SUB_B);
    // Exact text matters: spacing and number spelling must survive (checksums need it).
    let sent = [
        r#"{"price":"1.10", "qty" : 1e3,"list":[1,2.50]}"#,
        r#"[1,"a",null]"#,
        "not json at all",
        "{\"multi\":\n1}",
        r#""just a string""#,
    ];
    for m in sent {
        conn.send_text(m).await;
    }
    conn.send_binary(&[0, 1, 2, 255]).await;
    rec.wait_messages(6).await;
    rec.stop().await;

    let files = files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!files[0].to_string_lossy().ends_with(".open"));
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The embedded messages appear verbatim in the lines.
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!(",\"msg\":{}}}", sent[0]))),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!(",\"msg\":{}}}", sent[1])))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!(",\"msg\":{}}}", sent[4])))
    );
    let recs = records(dir.path());
    let msgs: Vec<&Value> = recs.iter().filter(|r| r.get("seq").is_some()).collect();
    assert_eq!(msgs.len(), 6);
    for (i, r) in msgs.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
        assert_eq!(r["conn"], 1);
        assert_eq!(r["stream"], "feed");
        assert!(r["ts"].as_u64().unwrap() >= BASE_NS);
    }
    assert_eq!(msgs[2]["text"], "not json at all");
    assert_eq!(msgs[3]["text"], "{\"multi\":\n1}");
    assert_eq!(msgs[5]["bin"], "AAEC/w==");
    let connected = events(&recs, "connected");
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0]["pid"], std::process::id());
    assert!(
        connected[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("ws://127.0.0.1:")
    );
    let subscribed = events(&recs, "subscribed");
    assert_eq!(subscribed[0]["messages"][1], SUB_B);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc.len(), 1);
    assert_eq!(disc[0]["reason"], "shutdown");
    assert_eq!(disc[0]["messages"], 6);
}

#[tokio::test(start_paused = true)]
async fn subscribe_is_resent_after_every_reconnect_and_drop_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.subscribe = vec![
        wsrec::config::OutMessage(SUB_A.into()),
        wsrec::config::OutMessage(SUB_B.into()),
    ];
    let rec = start(config(dir.path(), vec![s]), BASE_NS);

    let mut sent = Vec::new();
    for round in 0..3 {
        let mut conn = server.accept().await;
        assert_eq!(conn.recv_text().await, SUB_A, "round {round}");
        assert_eq!(conn.recv_text().await, SUB_B, "round {round}");
        let batch = numbered(round * 1000, 500);
        conn.send_all(batch.clone()).await;
        sent.extend(batch);
        // Server drops the connection mid-stream, without a close frame.
        conn.drop_abruptly().await;
    }
    let mut last = server.accept().await;
    assert_eq!(last.recv_text().await, SUB_A);
    rec.wait_messages(sent.len() as u64).await;
    rec.stop().await;

    let recs = records(dir.path());
    assert_eq!(
        messages(&recs),
        sent,
        "every message sent before each drop is recorded, in order"
    );
    let conns: Vec<u64> = recs
        .iter()
        .filter(|r| r.get("msg").is_some())
        .map(|r| r["conn"].as_u64().unwrap())
        .collect();
    assert_eq!(conns[0], 1);
    assert_eq!(conns[500], 2);
    assert_eq!(conns[1000], 3);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc.len(), 4);
    for d in &disc[..3] {
        assert_ne!(d["reason"], "shutdown", "{d}");
        assert_eq!(d["messages"], 500);
    }
    assert_eq!(events(&recs, "subscribed").len(), 4);
    assert_eq!(events(&recs, "connected").len(), 4);
}

#[tokio::test(start_paused = true)]
async fn server_close_code_and_reason_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(
        config(dir.path(), vec![stream("feed", &server.url())]),
        BASE_NS,
    );
    let mut conn = server.accept().await;
    conn.send_text(r#"{"a":1}"#).await;
    conn.close(4001, "maintenance").await;
    // The recorder answers the close frame (RFC 6455 5.5.1), then reconnects.
    assert_eq!(conn.recv_close().await, Some(4001));
    let _again = server.accept().await;
    rec.stop().await;
    let recs = records(dir.path());
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], "closed_by_server");
    assert_eq!(disc[0]["code"], 4001);
    assert_eq!(disc[0]["close_reason"], "maintenance");
}

#[tokio::test(start_paused = true)]
async fn silence_timeout_forces_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.silence_timeout = Some(Duration::from_secs(30));
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    let mut first = server.accept().await;
    first.send_text(r#"{"a":1}"#).await;
    let started = tokio::time::Instant::now();
    // The server keeps the connection open and answers nothing but sends nothing either.
    let reader = tokio::spawn(async move { first.recv_close().await });
    let _second = server.accept().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(35),
        "{waited:?}"
    );
    assert_eq!(
        reader.await.unwrap(),
        Some(1000),
        "the silent connection is closed politely"
    );
    rec.stop().await;
    let recs = records(dir.path());
    assert_eq!(
        events(&recs, "disconnected")[0]["reason"],
        "silence_timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn pong_deadline_forces_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.ping_interval = Some(Duration::from_secs(10));
    s.pong_timeout = Some(Duration::from_secs(5));
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    // This server never reads, so it never answers the ping.
    let first = server.accept().await;
    let started = tokio::time::Instant::now();
    let _second = server.accept().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(15) && waited < Duration::from_secs(17),
        "{waited:?}"
    );
    drop(first);
    rec.stop().await;
    let recs = records(dir.path());
    assert_eq!(events(&recs, "disconnected")[0]["reason"], "pong_timeout");
}

/// Real time, not paused: a pong travels through the kernel, and paused time would jump to
/// the pong deadline while it is in flight.
#[tokio::test]
async fn answered_pings_keep_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.ping_interval = Some(Duration::from_millis(50));
    s.pong_timeout = Some(Duration::from_secs(2));
    s.app_ping = Some(wsrec::config::OutMessage(r#"{"op":"ping"}"#.into()));
    s.app_ping_interval = Some(Duration::from_millis(80));
    s.app_pong_contains = Some("pong".into());
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    let mut conn = server.accept().await;
    // Reading answers protocol pings; each app ping gets an app reply. Ten rounds take
    // several pong deadlines' worth of pings.
    let mut pings = 0;
    while pings < 10 {
        match futures::StreamExt::next(&mut conn.ws).await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_))) => pings += 1,
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                assert_eq!(t.as_str(), r#"{"op":"ping"}"#);
                conn.send_text(r#"{"op":"pong"}"#).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    rec.wait_messages(3).await;
    assert_eq!(
        rec.stats.streams[0]
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    rec.stop().await;
    let recs = records(dir.path());
    assert_eq!(events(&recs, "connected").len(), 1);
    assert_eq!(events(&recs, "disconnected")[0]["reason"], "shutdown");
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_between_failed_attempts() {
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing listening: every attempt fails at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    drop(listener);
    let mut s = stream("feed", &url);
    s.backoff_initial = Duration::from_secs(1);
    s.backoff_max = Duration::from_secs(8);
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    rec.wait_until(|s| {
        s.streams[0]
            .connect_failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 6
    })
    .await;
    rec.stop().await;
    let recs = records(dir.path());
    let fails = events(&recs, "connect_failed");
    assert!(fails.len() >= 6);
    let gaps: Vec<u64> = fails
        .windows(2)
        .map(|w| (w[1]["ts"].as_u64().unwrap() - w[0]["ts"].as_u64().unwrap()) / 1_000_000)
        .collect();
    // Equal jitter: each delay lies in [base/2, base] with base 1, 2, 4, 8, 8 s.
    for (gap, base) in gaps.iter().zip([1000u64, 2000, 4000, 8000, 8000]) {
        assert!(*gap >= base / 2 && *gap <= base + 5, "gaps {gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn max_connection_age_reconnects_make_before_break() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.subscribe = vec![wsrec::config::OutMessage(SUB_A.into())];
    s.max_connection_age = Some(Duration::from_secs(3600));
    let rec = start(config(dir.path(), vec![s]), BASE_NS);

    let mut old = server.accept().await;
    assert_eq!(old.recv_text().await, SUB_A);
    old.send_all(numbered(0, 10)).await;
    rec.wait_messages(10).await;
    // At the age limit a second connection opens while the first is still up.
    let mut new = server.accept().await;
    assert_eq!(new.recv_text().await, SUB_A);
    // The old connection keeps delivering until the new one has data.
    old.send_all(numbered(10, 5)).await;
    rec.wait_messages(15).await;
    new.send_all(numbered(15, 5)).await;
    rec.wait_messages(20).await;
    // And for a grace after that: what the venue sent it before the new subscription took
    // effect may still be arriving.
    old.send_all(numbered(20, 5)).await;
    rec.wait_messages(25).await;
    assert_eq!(
        old.recv_close().await,
        Some(1001),
        "the old connection is retired after the new one delivers"
    );
    rec.stop().await;

    let recs = records(dir.path());
    let mut got = messages(&recs);
    got.sort();
    let mut want = numbered(0, 25);
    want.sort();
    assert_eq!(got, want, "nothing lost across the planned reconnect");
    let connected = events(&recs, "connected");
    assert_eq!(connected[1]["conn"], 2);
    assert_eq!(connected[1]["replaces"], 1, "the overlap start is marked");
    let disc = events(&recs, "disconnected");
    let replaced: Vec<_> = disc.iter().filter(|d| d["reason"] == "replaced").collect();
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0]["conn"], 1);
    // Retired no sooner than the grace after the new connection's first message.
    let first_new = recs
        .iter()
        .find(|r| r.get("msg").is_some() && r["conn"] == 2)
        .unwrap();
    let ts = |r: &serde_json::Value| r["ts"].as_u64().unwrap();
    assert!(
        ts(replaced[0]) - ts(first_new) >= wsrec::net::stream::RETIRE_GRACE.as_nanos() as u64,
        "retired {} ns after the replacement's first message",
        ts(replaced[0]) - ts(first_new)
    );
}

/// A recorder of one stream into `dir`, its connection accepted and a first message (`numbered`
/// 0) recorded: the server, the recorder and the server's side of the connection.
async fn recording_one_message(dir: &std::path::Path) -> (TestServer, Running, ServerConn) {
    let mut server = TestServer::start().await;
    let rec = start(config(dir, vec![stream("feed", &server.url())]), BASE_NS);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 1)).await;
    rec.wait_messages(1).await;
    (server, rec, conn)
}

#[tokio::test(start_paused = true)]
async fn a_close_received_before_a_stop_is_how_the_connection_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, rec, mut conn) = recording_one_message(dir.path()).await;
    // Frames and then the server's close, all in the recorder's socket when the stop comes:
    // the recording says the server closed, not that the recorder shut down.
    conn.send_all(numbered(1, 10)).await;
    conn.close(4001, "maintenance").await;
    rec.stop().await;
    let recs = records(dir.path());
    assert_eq!(messages(&recs), numbered(0, 11));
    let disc = events(&recs, "disconnected");
    assert_eq!(disc.len(), 1, "{disc:#?}");
    assert_eq!(disc[0]["reason"], "closed_by_server");
    assert_eq!(disc[0]["code"], 4001);
}

#[tokio::test(start_paused = true)]
async fn frames_received_before_a_stop_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, rec, mut conn) = recording_one_message(dir.path()).await;
    // Sent, so in the recorder's socket, when the stop comes: the connection has had no turn
    // to read them, and records them before it closes.
    conn.send_all(numbered(1, 50)).await;
    rec.stop().await;
    let recs = records(dir.path());
    assert_eq!(messages(&recs), numbered(0, 51));
    assert_eq!(
        events(&recs, "disconnected")[0]["reason"],
        "shutdown",
        "{recs:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rotates_at_the_utc_boundary_even_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(
        config(dir.path(), vec![stream("feed", &server.url())]),
        BASE_NS,
    );
    let mut conn = server.accept().await;
    conn.send_text(r#"{"before":1}"#).await;
    rec.wait_messages(1).await;
    // Cross 11:00:00Z with no traffic: the 10:00 file must be closed by the timer.
    tokio::time::advance(Duration::from_secs(15)).await;
    rec.wait_until(|s| s.files_closed.load(std::sync::atomic::Ordering::Relaxed) >= 1)
        .await;
    let closed = files(dir.path());
    assert_eq!(closed.len(), 1);
    let name = closed[0].to_string_lossy().into_owned();
    assert!(
        name.ends_with("feed/2026-11-24/feed-20261124T100000Z.jsonl"),
        "{name}"
    );
    conn.send_text(r#"{"after":1}"#).await;
    rec.wait_messages(2).await;
    rec.stop().await;
    let all = files(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[1]
            .to_string_lossy()
            .ends_with("feed-20261124T110000Z.jsonl")
    );
    let first = std::fs::read_to_string(&all[0]).unwrap();
    let second = std::fs::read_to_string(&all[1]).unwrap();
    assert!(first.contains(r#""msg":{"before":1}"#) && !first.contains("after"));
    assert!(second.contains(r#""msg":{"after":1}"#));
}

#[tokio::test(start_paused = true)]
async fn max_lines_rotates_into_numbered_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.max_lines = 10;
    let rec = start(config(dir.path(), vec![s]), BASE_NS - 600_000_000_000);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 25)).await;
    rec.wait_messages(25).await;
    rec.stop().await;
    let all = files(dir.path());
    // 1 connected event + 25 messages + 1 disconnected event = 27 lines: 10 + 10 + 7.
    assert_eq!(all.len(), 3, "{all:?}");
    let names: Vec<String> = all
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "feed-20261124T100000Z.1.jsonl",
            "feed-20261124T100000Z.2.jsonl",
            "feed-20261124T100000Z.jsonl"
        ]
    );
    let counts: Vec<usize> = [&all[2], &all[0], &all[1]]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .collect();
    assert_eq!(counts, [10, 10, 7]);
    let recs = records(dir.path());
    let mut got = messages(&recs);
    got.sort();
    let mut want = numbered(0, 25);
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(start_paused = true)]
async fn drop_newest_counts_and_marks_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut cfg = config(dir.path(), vec![stream("feed", &server.url())]);
    cfg.queue_capacity = 4;
    cfg.when_full = wsrec::WhenFull::DropNewest;
    let rec = start(cfg, BASE_NS);
    let mut conn = server.accept().await;
    let total = 20_000;
    conn.send_all(numbered(0, total)).await;
    rec.wait_until(|s| {
        let st = &s.streams[0];
        st.messages.load(std::sync::atomic::Ordering::Relaxed) >= total as u64
    })
    .await;
    let dropped = rec.stats.streams[0]
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    rec.stop().await;
    assert!(
        dropped > 0,
        "a 4-message queue must overflow on a 20k burst"
    );
    let recs = records(dir.path());
    let kept = messages(&recs).len() as u64;
    let marked: u64 = events(&recs, "dropped")
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        kept + dropped,
        total as u64,
        "every message is written or counted"
    );
    assert_eq!(marked, dropped, "every drop is marked in the data");
    // Sequence numbers show where the gaps are.
    let seqs: Vec<u64> = recs
        .iter()
        .filter_map(|r| r.get("seq").and_then(Value::as_u64))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(start_paused = true)]
async fn raw_format_writes_verbatim_and_diverts_unsafe_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.format = Format::Raw;
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    let mut conn = server.accept().await;
    conn.send_text(r#"{"a": 1}"#).await;
    conn.send_text("line\nbreak").await;
    conn.send_binary(b"\x00bin").await;
    conn.send_text("plain").await;
    rec.wait_messages(4).await;
    rec.stop().await;
    let all = files(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    let data = std::fs::read_to_string(&all[1]).unwrap();
    assert_eq!(data, "{\"a\": 1}\nplain\n");
    let events_file = &all[0];
    assert!(events_file.to_string_lossy().ends_with(".events.ndjson"));
    let ev: Vec<Value> = std::fs::read_to_string(events_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ev[0]["event"], "connected");
    assert_eq!(ev[1]["text"], "line\nbreak");
    assert_eq!(ev[1]["seq"], 1);
    assert_eq!(ev[2]["bin"], "AGJpbg==");
    assert_eq!(ev.last().unwrap()["event"], "disconnected");
    assert_eq!(
        rec_raw_unsafe(&ev),
        2,
        "the diverted messages are whole records with their seq"
    );
}

fn rec_raw_unsafe(ev: &[Value]) -> usize {
    ev.iter().filter(|e| e.get("seq").is_some()).count()
}

#[tokio::test(start_paused = true)]
async fn many_streams_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut servers = Vec::new();
    let mut streams = Vec::new();
    for i in 0..5 {
        let server = TestServer::start().await;
        streams.push(stream(&format!("s{i}"), &server.url()));
        servers.push(server);
    }
    let rec = start(config(dir.path(), streams), BASE_NS);
    for (i, server) in servers.iter_mut().enumerate() {
        let mut conn = server.accept().await;
        conn.send_all(numbered(i * 100, 100)).await;
        std::mem::forget(conn);
    }
    rec.wait_until(|s| {
        s.streams
            .iter()
            .all(|st| st.messages.load(std::sync::atomic::Ordering::Relaxed) == 100)
    })
    .await;
    rec.stop().await;
    for i in 0..5 {
        let sub = dir.path().join(format!("s{i}"));
        let recs = records(&sub);
        assert_eq!(messages(&recs), numbered(i * 100, 100));
        assert!(recs.iter().all(|r| r["stream"] == format!("s{i}").as_str()));
    }
}

#[tokio::test(start_paused = true)]
async fn oversized_message_ends_the_connection_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.max_message_size = 4096;
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    let mut conn = server.accept().await;
    conn.send_text(r#"{"small":1}"#).await;
    conn.send_text(&format!(r#"{{"big":"{}"}}"#, "x".repeat(10_000)))
        .await;
    let _second = server.accept().await;
    rec.stop().await;
    let recs = records(dir.path());
    assert_eq!(messages(&recs), [r#"{"small":1}"#]);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], "message_too_large");
    assert!(
        disc[0]["detail"]
            .as_str()
            .unwrap()
            .contains("max_message_size")
    );
}

#[tokio::test(start_paused = true)]
async fn handshake_headers_are_sent_and_masked_in_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &format!("{}?token=s3cret", server.url()));
    s.headers.insert(
        "X-Api-Key".into(),
        wsrec::config::Secret("k3y-value".into()),
    );
    let rec = start(config(dir.path(), vec![s]), BASE_NS);
    let conn = server.accept().await;
    rec.wait_until(|s| {
        s.streams[0]
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
    assert!(
        conn.headers
            .iter()
            .any(|(k, v)| k == "x-api-key" && v == "k3y-value")
    );
    rec.stop().await;
    let all: String = files(dir.path())
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        !all.contains("s3cret") && !all.contains("k3y-value"),
        "{all}"
    );
    assert!(all.contains("token=***"));
}
