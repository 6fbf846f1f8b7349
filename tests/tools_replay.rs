//! `wsrec replay` in-process: a real WebSocket client (tokio-tungstenite) against the replay
//! server on 127.0.0.1:0, with tokio's paused time, so pacing is measured exactly; and a
//! replay recorded again by the real recorder, which must give back the same messages.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use wsrec::read::discover;
use wsrec::tools::Filter;
use wsrec::tools::replay::{FileSource, PlayOptions, Speed, serve};

const T0: u64 = 1_795_518_010_000_000_000;
const MS: u64 = 1_000_000;

/// A recording of stream `s` (messages at 0, 1 s, 1.5 s, 3.5 s: JSON, text with a line break,
/// binary, JSON) and of stream `t` (one message at 2 s).
fn recording(dir: &Path) {
    let s = [
        format!(
            r#"{{"ts":{T0},"stream":"s","conn":1,"event":"connected","url":"ws://x/","host":"h","pid":1}}"#
        ),
        format!(r#"{{"ts":{T0},"stream":"s","conn":1,"seq":0,"msg":{{"a": 1.50, "b":[1e3]}}}}"#),
        format!(
            r#"{{"ts":{},"stream":"s","conn":1,"seq":1,"text":"line1\nline2"}}"#,
            T0 + 1000 * MS
        ),
        format!(
            r#"{{"ts":{},"stream":"s","conn":1,"seq":2,"bin":"AAEC/w=="}}"#,
            T0 + 1500 * MS
        ),
        format!(
            r#"{{"ts":{},"stream":"s","conn":1,"seq":3,"msg":[1,2]}}"#,
            T0 + 3500 * MS
        ),
    ];
    std::fs::write(dir.join("s-1.jsonl"), s.join("\n") + "\n").unwrap();
    let t = format!(
        r#"{{"ts":{},"stream":"t","conn":1,"seq":0,"msg":{{"t":1}}}}"#,
        T0 + 2000 * MS
    );
    std::fs::write(dir.join("t-1.jsonl"), t + "\n").unwrap();
}

fn expected_s() -> Vec<Message> {
    vec![
        Message::text(r#"{"a": 1.50, "b":[1e3]}"#),
        Message::text("line1\nline2"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text("[1,2]"),
    ]
}

/// Starts a replay server of the files under `dir`.
async fn start(dir: &Path, opts: PlayOptions) -> (SocketAddr, CancellationToken) {
    let files = discover(&[dir.to_owned()]).unwrap();
    let source = Arc::new(FileSource::new(files, Filter::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, source, opts, stop.clone()));
    (addr, stop)
}

/// Connects to `path` and receives until the server closes: each data message with the time
/// it arrived (since the first), and the close code.
async fn receive(
    addr: SocketAddr,
    path: &str,
    max: usize,
) -> (Vec<(Duration, Message)>, Option<u16>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut first: Option<Instant> = None;
    while let Some(m) = ws.next().await {
        match m.unwrap() {
            Message::Close(frame) => return (got, frame.map(|f| u16::from(f.code))),
            m @ (Message::Text(_) | Message::Binary(_)) => {
                let now = Instant::now();
                let t0 = *first.get_or_insert(now);
                got.push((now - t0, m));
                if got.len() == max {
                    return (got, None);
                }
            }
            _ => {}
        }
    }
    (got, None)
}

fn assert_near(got: Duration, want_ms: u64) {
    let want = Duration::from_millis(want_ms);
    let diff = got.abs_diff(want);
    assert!(
        diff <= Duration::from_millis(1),
        "got {got:?}, want {want:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn replay_keeps_the_recorded_pace_at_speed_n() {
    let dir = tempfile::tempdir().unwrap();
    recording(dir.path());
    let (addr, stop) = start(
        dir.path(),
        PlayOptions {
            speed: Speed::Factor(2.0),
            looping: false,
        },
    )
    .await;
    let (got, close) = receive(addr, "/s", usize::MAX).await;
    assert_eq!(close, Some(1000), "closed at the end of the recording");
    let msgs: Vec<Message> = got.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(msgs, expected_s(), "exactly as recorded, binary as binary");
    // 0, 1 s, 1.5 s, 3.5 s at twice the speed.
    for ((at, _), want) in got.iter().zip([0, 500, 750, 1750]) {
        assert_near(*at, want);
    }

    // Original pace, all streams merged: `t` slots in at 2 s.
    let opts = PlayOptions {
        speed: Speed::Factor(1.0),
        looping: false,
    };
    let (addr, stop2) = start(dir.path(), opts).await;
    let (got, _) = receive(addr, "/", usize::MAX).await;
    assert_eq!(got.len(), 5);
    assert_eq!(got[3].1, Message::text(r#"{"t":1}"#));
    for ((at, _), want) in got.iter().zip([0, 1000, 1500, 2000, 3500]) {
        assert_near(*at, want);
    }
    stop.cancel();
    stop2.cancel();
}

#[tokio::test(start_paused = true)]
async fn replay_as_fast_as_possible_and_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    recording(dir.path());
    let (addr, stop) = start(
        dir.path(),
        PlayOptions {
            speed: Speed::Max,
            looping: false,
        },
    )
    .await;
    let (got, close) = receive(addr, "/s", usize::MAX).await;
    assert_eq!(close, Some(1000));
    assert!(
        got.iter().all(|(at, _)| at.is_zero()),
        "no waiting: {got:?}"
    );
    stop.cancel();

    let (addr, stop) = start(
        dir.path(),
        PlayOptions {
            speed: Speed::Factor(10.0),
            looping: true,
        },
    )
    .await;
    // Three rounds: the recording again and again, each at pace.
    let (got, close) = receive(addr, "/s", 12).await;
    assert_eq!(close, None, "a loop does not end");
    let msgs: Vec<Message> = got.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(msgs, [expected_s(), expected_s(), expected_s()].concat());
    assert_near(got[3].0, 350);
    assert_near(got[7].0 - got[4].0, 350);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn replay_refuses_an_unknown_stream_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    recording(dir.path());
    let (addr, stop) = start(
        dir.path(),
        PlayOptions {
            speed: Speed::Factor(1.0),
            looping: true,
        },
    )
    .await;
    let err = tokio_tungstenite::connect_async(format!("ws://{addr}/nope"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/t"))
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert_eq!(first, Message::text(r#"{"t":1}"#));
    stop.cancel();
    let mut code = None;
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Close(f) = m {
            code = f.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(1001), "going away");
}

#[tokio::test(start_paused = true)]
async fn a_replay_recorded_again_gives_the_same_messages() {
    // Real Bybit frames, recorded, replayed, recorded again: same messages, same pace.
    let frames: Vec<String> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/corpus/bybit-linear_publicTrade.jsonl"
    ))
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect();
    let first = tempfile::tempdir().unwrap();
    let mut server = common::TestServer::start().await;
    let rec = common::start(
        common::config(first.path(), vec![common::stream("feed", &server.url())]),
        T0,
    );
    let mut conn = server.accept().await;
    for (i, f) in frames.iter().enumerate() {
        conn.send_text(f).await;
        rec.wait_messages(i as u64 + 1).await;
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    rec.stop().await;

    let (addr, stop) = start(
        first.path(),
        PlayOptions {
            speed: Speed::Factor(1.0),
            looping: false,
        },
    )
    .await;
    let second = tempfile::tempdir().unwrap();
    let mut s = common::stream("again", &format!("ws://{addr}/feed"));
    // The replay closes at the end; do not come back for more.
    s.backoff_initial = Duration::from_secs(3600);
    s.backoff_max = Duration::from_secs(3600);
    let rec = common::start(common::config(second.path(), vec![s]), T0);
    rec.wait_messages(frames.len() as u64).await;
    rec.stop().await;
    stop.cancel();

    let recs = common::records(second.path());
    assert_eq!(common::messages(&recs).len(), frames.len());
    let text = common::files(second.path())
        .iter()
        .map(|f| common::read_text(f))
        .collect::<String>();
    for f in &frames {
        assert!(text.contains(&format!(",\"msg\":{f}}}")), "{f}");
    }
    // The pace survived: the same gaps between receive times, within a millisecond.
    let ts: Vec<u64> = recs
        .iter()
        .filter(|r| r.get("seq").is_some())
        .map(|r| r["ts"].as_u64().unwrap())
        .collect();
    for w in ts.windows(2) {
        let gap = w[1] - w[0];
        assert!((6 * MS..=8 * MS).contains(&gap), "{gap}");
    }
}
