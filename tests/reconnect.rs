//! Reconnects after the server ends a connection (issue 15, point 2): a connection that
//! received data is healthy however short it was, so the backoff starts over and the next
//! attempt comes after the initial delay (with jitter); attempts that end without data
//! (accepted and closed at once, or only the subscribe acks) make the delay grow. A real
//! loopback WebSocket server, real files, and tokio's paused time. The delays are read from the
//! `attempt` and `backoff_ms` fields of the `connected` events (the delay the supervisor chose,
//! not a measured gap: paused time can jump while a socket is waited on, and a busy machine
//! stretches real gaps).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use wsrec::StreamConfig;

const SUB: &str = r#"{"op":"subscribe","args":["trades"]}"#;
const ACK: &str = r#"{"op":"subscribe","success":true}"#;
const INITIAL: Duration = Duration::from_millis(100);

/// What the server does with one connection, after the upgrade.
#[derive(Clone, Copy, Debug)]
enum Round {
    /// Drops the TCP connection at once (FIN, no close frame), before reading anything.
    CloseAtOnce,
    /// Answers the subscribe message (an ack), then drops.
    AckOnly,
    /// Answers the subscribe message and sends this many data messages, then drops.
    Data(usize),
}

/// A plain (no venue) stream subscribing with [`SUB`], whose backoff would grow from 100 ms
/// to 10 s.
fn plain_stream(url: &str) -> StreamConfig {
    let mut s = stream("feed", url);
    s.subscribe = vec![wsrec::config::OutMessage(SUB.into())];
    s.backoff_initial = INITIAL;
    s.backoff_max = Duration::from_secs(10);
    s
}

/// How the test server answers: the messages that answer a subscribe message, the data message
/// number `i`, and text found in every answer and in no data message.
struct Speech {
    ack: fn(&str) -> Vec<String>,
    data: fn(usize) -> String,
    ack_marker: &'static str,
}

/// The answers of a plain server: [`ACK`] and small numbered messages.
const PLAIN: Speech = Speech {
    ack: |_| vec![ACK.to_owned()],
    data: |i| format!(r#"{{"n":{i}}}"#),
    ack_marker: "success",
};

/// Starts a recorder on the streams `streams` makes for the server's URL, plays `rounds`
/// against it, one connection each, then accepts one more connection and stops it once
/// everything sent is recorded. Checks that every data message sent is in the recording, in
/// order, and returns the records and `(attempt, backoff_ms)` of every `connected` event.
async fn play(
    streams: impl FnOnce(&str) -> Vec<StreamConfig>,
    rounds: &[Round],
    speech: Speech,
) -> (Vec<Value>, Vec<(u64, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(config(dir.path(), streams(&server.url())), BASE_NS);
    let mut sent = Vec::new();
    let mut received = 0;
    for round in rounds {
        let mut conn = server.accept().await;
        match *round {
            Round::CloseAtOnce => {}
            Round::AckOnly => {
                let answer = (speech.ack)(&conn.recv_text().await);
                received += answer.len();
                conn.send_all(answer).await;
            }
            Round::Data(n) => {
                let answer = (speech.ack)(&conn.recv_text().await);
                let batch: Vec<String> = (sent.len()..sent.len() + n).map(speech.data).collect();
                received += answer.len() + n;
                conn.send_all(answer.into_iter().chain(batch.iter().cloned()))
                    .await;
                sent.extend(batch);
            }
        }
        conn.drop_abruptly().await;
    }
    let mut last = server.accept().await;
    last.recv_text().await;
    rec.wait_messages(received as u64).await;
    rec.stop().await;

    let recs = records(dir.path());
    let data: Vec<String> = messages(&recs)
        .into_iter()
        .filter(|m| !m.contains(speech.ack_marker))
        .collect();
    assert_eq!(data, sent, "every data message is recorded");
    let got = attempts(&recs);
    assert_eq!(got.len(), rounds.len() + 1, "{got:?}");
    assert_eq!(got[0], (1, 0), "the first connection waits for nothing");
    (recs, got)
}

/// `(attempt, backoff_ms)` of every `connected` event, in order.
fn attempts(recs: &[Value]) -> Vec<(u64, u64)> {
    events(recs, "connected")
        .iter()
        .map(|e| {
            (
                e["attempt"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no attempt: {e}")),
                e["backoff_ms"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no backoff_ms: {e}")),
            )
        })
        .collect()
}

/// Checks that connection `k` (0-based, in `got`) came after failure number `failures` of a
/// backoff growing from [`INITIAL`]: attempt `failures + 1`, delay in `[base/2, base]`.
fn assert_backed_off(got: &[(u64, u64)], k: usize, failures: u32) {
    let (attempt, backoff_ms) = got[k];
    assert_eq!(attempt, u64::from(failures) + 1, "connection {k}: {got:?}");
    let base = INITIAL.as_millis() as u64 * (1 << (failures - 1));
    assert!(
        backoff_ms >= base / 2 && backoff_ms <= base,
        "connection {k}: {backoff_ms} ms outside [{}, {base}]: {got:?}",
        base / 2
    );
}

/// Checks that connection `k` came right after a healthy one: a first attempt, after the
/// initial delay with jitter.
fn assert_prompt(got: &[(u64, u64)], k: usize) {
    let (attempt, backoff_ms) = got[k];
    assert_eq!(attempt, 1, "connection {k} after a healthy one: {got:?}");
    let initial = INITIAL.as_millis() as u64;
    assert!(
        backoff_ms >= initial / 2 && backoff_ms <= initial,
        "connection {k}: waited {backoff_ms} ms after a healthy connection: {got:?}"
    );
}

/// The issue's server: it drops the connection (FIN, no close frame) after every batch of
/// messages. Each connection delivered data, so none makes the next delay grow, and nothing
/// sent is lost.
#[tokio::test(start_paused = true)]
async fn productive_connections_cut_without_a_close_frame_do_not_grow_the_backoff() {
    let rounds = [Round::Data(1000); 8];
    let (recs, got) = play(|url| vec![plain_stream(url)], &rounds, PLAIN).await;
    let disc = events(&recs, "disconnected");
    for d in &disc[..rounds.len()] {
        assert_eq!(d["reason"], "error", "cut without a close frame: {d}");
        assert_eq!(d["messages"], 1001);
    }
    for k in 1..got.len() {
        assert_prompt(&got, k);
    }
}

/// Accepted and closed at once, or closed after nothing but the subscribe ack: no data, so the
/// delay doubles at each attempt (the protection against a server that accepts and hangs up);
/// data on one connection starts it over, and the next attempt without data backs off again
/// from the initial delay.
#[tokio::test(start_paused = true)]
async fn connections_without_data_still_back_off() {
    use Round::*;
    let rounds = [
        CloseAtOnce,
        CloseAtOnce,
        AckOnly,
        AckOnly,
        CloseAtOnce,
        Data(1),
        AckOnly,
        CloseAtOnce,
    ];
    let (_, got) = play(|url| vec![plain_stream(url)], &rounds, PLAIN).await;
    for k in 1..=5 {
        assert_backed_off(&got, k, k as u32);
    }
    // Connection 5 delivered one message besides its ack.
    assert_prompt(&got, 6);
    assert_backed_off(&got, 7, 1);
    assert_backed_off(&got, 8, 2);
}

/// On a venue stream the venue's protocol tells data from the rest: a Bybit subscribe ack and
/// a pong are no data (a plain stream would have taken the second message for data), a trade
/// is.
#[tokio::test(start_paused = true)]
async fn venue_acks_are_not_data_and_a_trade_is() {
    let bybit = |url: &str| {
        let toml = format!(
            "[[stream]]\nname = \"feed\"\nvenue = \"bybit-linear\"\nurl = \"{url}\"\n\
             topics = [\"publicTrade.BTCUSDT\"]\nbackoff_initial = \"100ms\"\n\
             backoff_max = \"10s\"\n"
        );
        wsrec::Config::parse_toml(&toml)
            .and_then(wsrec::net::venue::resolve)
            .unwrap()
            .streams
    };
    let speech = Speech {
        ack: |sub| {
            let req: Value = serde_json::from_str(sub).unwrap();
            assert_eq!(req["op"], "subscribe", "{sub}");
            vec![
                format!(
                    r#"{{"success":true,"ret_msg":"","conn_id":"c1","req_id":{},"op":"subscribe"}}"#,
                    req["req_id"]
                ),
                r#"{"success":true,"ret_msg":"pong","conn_id":"c1","req_id":"","op":"ping"}"#
                    .to_owned(),
            ]
        },
        data: |i| {
            format!(
                r#"{{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":{i},"data":[{{"p":"65000.1"}}]}}"#
            )
        },
        ack_marker: "conn_id",
    };
    use Round::*;
    let rounds = [AckOnly, AckOnly, AckOnly, Data(1), AckOnly, Data(3)];
    let (_, got) = play(bybit, &rounds, speech).await;
    for k in 1..=3 {
        assert_backed_off(&got, k, k as u32);
    }
    assert_prompt(&got, 4);
    assert_backed_off(&got, 5, 1);
    assert_prompt(&got, 6);
}
