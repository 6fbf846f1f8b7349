//! Hostile and broken servers on loopback, each written by hand on plain TCP: never finishing
//! the handshake, refusing with 429/503 and `Retry-After`, redirecting, answering 200 or
//! garbage, going silent, sending invalid UTF-8, masked frames, a 2^63 length, ping floods, a
//! decompression bomb, a close frame and then nothing, one byte per second. For each: the right
//! error in the data and the logs (for protocol faults also the close code the server is told),
//! a reconnect with backoff, memory bounded, no panic (the recorder stops cleanly), and every
//! message received before the trouble is in the recording.
//!
//! Also the local-security checks of issue 5: secrets never reach the status socket, the data
//! or the logs; stream names and path templates cannot leave the output directory.
//!
//! Real time with short timeouts: these servers race the recorder's timeouts over real
//! sockets, which tokio's paused clock would skip past.

mod common;
mod peers;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use peers::*;
use tokio::io::AsyncWriteExt;
use wsrec::StreamConfig;

const GOOD: [&str; 2] = [r#"{"n":1}"#, "second, not JSON"];

/// A stream with short, test-sized settings.
fn hostile_stream(name: &str, url: &str) -> StreamConfig {
    let mut s = stream(name, url);
    s.backoff_initial = Duration::from_millis(50);
    s.backoff_max = Duration::from_millis(400);
    s.handshake_timeout = Duration::from_secs(5);
    s
}

/// A temp dir and the recording dir inside it (so helper files never mix with the data).
fn dirs() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    std::fs::create_dir_all(&out).unwrap();
    (tmp, out)
}

fn good_payloads() -> Vec<Payload> {
    GOOD.iter()
        .map(|g| Payload::Text(g.as_bytes().to_vec()))
        .collect()
}

/// After a clean upgrade the server sends the [`GOOD`] messages, then `bad`, and keeps the
/// socket open (so it is the recorder's own check that ends the connection). Checks the
/// `disconnected` event (`reason`, a detail containing every `detail` part), the log, that the
/// recorder came back, that the good messages were kept, and that memory stayed bounded.
async fn after_good_messages(
    name: &str,
    configure: impl FnOnce(&mut StreamConfig),
    extensions: Option<&str>,
    bad: Vec<u8>,
    reason: &str,
    detail: &[&str],
) {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream(name, &server.url());
    configure(&mut s);
    let rss_before = rss_kib();
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut tcp = server.accept().await;
    upgrade_with(&mut tcp, extensions).await;
    for g in GOOD {
        let f = match extensions {
            Some(_) => frame_with(true, true, 1, &deflate(g.as_bytes()), None),
            None => frame(1, g.as_bytes()),
        };
        tcp.write_all(&f).await.unwrap();
    }
    // The recorder may hang up while this is still being written.
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.write_all(&bad)).await;
    let _second = server.accept().await;
    let rss_growth_mib = rss_kib().saturating_sub(rss_before) / 1024;
    eprintln!("{name}: resident memory grew by {rss_growth_mib} MiB");
    rec.stop().await;
    drop(tcp);

    assert!(
        rss_growth_mib < 256,
        "memory grew by {rss_growth_mib} MiB: not bounded"
    );
    assert_payloads(&payloads(&out), &good_payloads());
    let recs = records(&out);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], reason, "{}", disc[0]);
    assert_eq!(disc[0]["messages"], GOOD.len());
    let text = disc[0]["detail"].as_str().unwrap();
    for d in detail {
        assert!(text.contains(d), "detail {text:?} lacks {d:?}");
    }
    let mut parts = vec!["WARN", "Disconnected:"];
    parts.extend_from_slice(detail);
    assert_logged(name, &parts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_text_frame() {
    after_good_messages(
        "utf8",
        |_| {},
        None,
        frame(1, &[b'o', b'k', 0xff, 0xfe]),
        "error",
        &["not valid UTF-8"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_split_across_fragments() {
    // "é" is 0xc3 0xa9; cut after 0xc3 and continue with a byte that cannot follow it.
    let mut bad = frame_with(false, false, 1, b"caf\xc3", None);
    bad.extend(frame_with(true, false, 0, b"(", None));
    after_good_messages(
        "utf8-frag",
        |_| {},
        None,
        bad,
        "error",
        &["not valid UTF-8"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_frame_from_the_server() {
    after_good_messages(
        "masked",
        |_| {},
        None,
        frame_with(true, false, 1, b"scrambled", Some([1, 2, 3, 4])),
        "error",
        &["masked frame", "RFC 6455 5.1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_header_announcing_two_to_the_63_bytes() {
    let mut bad = vec![0x82, 0x7f];
    bad.extend_from_slice(&(1u64 << 63).to_be_bytes());
    bad.extend_from_slice(&[0; 64]);
    after_good_messages("len63", |_| {}, None, bad, "error", &["top bit set"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_header_announcing_more_than_max_message_size() {
    let mut bad = vec![0x82, 0x7f];
    bad.extend_from_slice(&((1u64 << 63) - 1).to_be_bytes());
    bad.extend_from_slice(&[0; 64]);
    after_good_messages(
        "len62",
        |_| {},
        None,
        bad,
        "message_too_large",
        &["larger than max_message_size"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood() {
    let mut bad = Vec::new();
    for _ in 0..20_000 {
        bad.extend(frame(9, b"flood"));
    }
    after_good_messages("pingflood", |_| {}, None, bad, "error", &["ping flood"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_frame_without_negotiation() {
    after_good_messages(
        "rsv1",
        |_| {},
        None,
        frame_with(true, true, 1, &deflate(b"zipped"), None),
        "error",
        &["permessage-deflate was not negotiated"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcode_and_fragmented_ping() {
    after_good_messages(
        "opcode",
        |_| {},
        None,
        frame(3, b"?"),
        "error",
        &["unknown opcode 3"],
    )
    .await;
    after_good_messages(
        "fragping",
        |_| {},
        None,
        frame_with(false, false, 9, b"half", None),
        "error",
        &["protocol error"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bomb_in_one_frame() {
    // ~1 MB on the wire, 1 GiB inflated; the limit is 2 MiB.
    let bomb = deflate_bomb(4_200_000);
    assert!(bomb.len() < 1_100_000, "{}", bomb.len());
    after_good_messages(
        "bomb",
        |s| {
            s.compression = wsrec::config::Compression::Deflate;
            s.max_message_size = 2 << 20;
        },
        Some("permessage-deflate"),
        frame_with(true, true, 2, &bomb, None),
        "message_too_large",
        &["larger than max_message_size (2097152 bytes)"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bomb_across_fragments() {
    // 40 fragments of ~25 KB, each inflating to ~6.4 MB; the limit is 2 MiB for the message.
    let bomb = deflate_bomb(1_000_000);
    let chunks: Vec<&[u8]> = bomb.chunks(bomb.len() / 10 + 1).collect();
    let mut bad = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let last = i == chunks.len() - 1;
        bad.extend(frame_with(
            last,
            i == 0,
            if i == 0 { 1 } else { 0 },
            c,
            None,
        ));
    }
    after_good_messages(
        "bomb-frag",
        |s| {
            s.compression = wsrec::config::Compression::Deflate;
            s.max_message_size = 2 << 20;
        },
        Some("permessage-deflate; server_no_context_takeover"),
        bad,
        "message_too_large",
        &["larger than max_message_size"],
    )
    .await;
}

#[test]
fn deflate_bomb_helper_is_valid_deflate() {
    let bomb = deflate_bomb(1000);
    let mut input = bomb.clone();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(out.len(), 1 + 258 * 1000);
    assert!(out.iter().all(|&b| b == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frame_then_socket_kept_open() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let rec = start(
        config(&out, vec![hostile_stream("close-open", &server.url())]),
        BASE_NS,
    );
    let mut tcp = server.accept().await;
    upgrade(&mut tcp).await;
    for g in GOOD {
        tcp.write_all(&frame(1, g.as_bytes())).await.unwrap();
    }
    tcp.write_all(&close_frame(1001, "going away"))
        .await
        .unwrap();
    // Never read, never close: the recorder must not wait on us for long.
    let closed_at = Instant::now();
    let _second = server.accept().await;
    let took = closed_at.elapsed();
    rec.stop().await;
    drop(tcp);

    assert!(took < Duration::from_secs(5), "reconnect took {took:?}");
    assert_payloads(&payloads(&out), &good_payloads());
    let recs = records(&out);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], "closed_by_server");
    assert_eq!(disc[0]["code"], 1001);
    assert_eq!(disc[0]["close_reason"], "going away");
    assert_logged("close-open", &["Disconnected:", "code 1001"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_then_sends_nothing() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("silent", &server.url());
    s.silence_timeout = Some(Duration::from_millis(500));
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut tcp = server.accept().await;
    upgrade(&mut tcp).await;
    tcp.write_all(&frame(1, GOOD[0].as_bytes())).await.unwrap();
    let _second = server.accept().await;
    rec.stop().await;
    drop(tcp);

    let recs = records(&out);
    assert_eq!(messages(&recs), [GOOD[0]]);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], "silence_timeout");
    assert_logged("silent", &["Disconnected:", "silence_timeout"]);
}

/// The close code of the first close frame the client sends on `tcp` (a client's frames are
/// masked; other frames before it are skipped), or `None` if the connection ends first.
async fn client_close_code(tcp: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    loop {
        // Client frames here are small: a 7-bit length, then the 4-byte mask key.
        while buf.len() >= 6 && buf.len() >= 6 + usize::from(buf[1] & 0x7f) {
            let len = usize::from(buf[1] & 0x7f);
            assert_ne!(buf[1] & 0x80, 0, "client frames are masked");
            let key = [buf[2], buf[3], buf[4], buf[5]];
            let payload: Vec<u8> = buf[6..6 + len]
                .iter()
                .zip(key.iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            if buf[0] & 0x0f == 8 {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
            buf.drain(..6 + len);
        }
        if tcp.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_breaks_the_protocol_is_told_why_with_a_close_code() {
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("told", &server.url());
    s.max_message_size = 1024;
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut too_large = vec![0x82, 126];
    too_large.extend_from_slice(&1025u16.to_be_bytes());
    // RFC 6455 7.4.1: 1007 for data that does not fit the message type, 1009 for a message
    // too big to process, 1002 for other protocol errors.
    let cases = [
        (frame(1, b"not \xff UTF-8"), 1007),
        (frame(3, b"?"), 1002),
        (
            frame_with(true, false, 1, b"masked", Some([1, 2, 3, 4])),
            1002,
        ),
        (too_large, 1009),
    ];
    for (bad, code) in cases {
        let mut tcp = server.accept().await;
        upgrade(&mut tcp).await;
        tcp.write_all(&frame(1, GOOD[0].as_bytes())).await.unwrap();
        tcp.write_all(&bad).await.unwrap();
        assert_eq!(client_close_code(&mut tcp).await, Some(code), "{bad:?}");
    }
    let _last = server.accept().await;
    rec.stop().await;
    let recs = records(&out);
    assert_eq!(messages(&recs), [GOOD[0]; 4]);
    let reasons: Vec<_> = events(&recs, "disconnected")
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["error", "error", "error", "message_too_large"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_then_never_answers_pings() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("nopong", &server.url());
    s.ping_interval = Some(Duration::from_millis(200));
    s.pong_timeout = Some(Duration::from_millis(300));
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut tcp = server.accept().await;
    upgrade(&mut tcp).await;
    let _second = server.accept().await;
    rec.stop().await;
    drop(tcp);

    let disc = events(&records(&out), "disconnected")[0].clone();
    assert_eq!(disc["reason"], "pong_timeout", "{disc}");
    assert_logged("nopong", &["Disconnected:", "pong_timeout"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickles_one_byte_per_second_after_the_upgrade() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("trickle", &server.url());
    s.silence_timeout = Some(Duration::from_millis(1500));
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut tcp = server.accept().await;
    upgrade(&mut tcp).await;
    tcp.write_all(&frame(1, GOOD[0].as_bytes())).await.unwrap();
    let trickle = tokio::spawn(async move {
        // A frame announcing 1000 bytes, then its payload one byte per second.
        for b in frame(1, &[b'x'; 1000]) {
            if tcp.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let _second = server.accept().await;
    rec.stop().await;
    trickle.abort();

    let recs = records(&out);
    assert_eq!(messages(&recs), [GOOD[0]]);
    assert_eq!(
        events(&recs, "disconnected")[0]["reason"],
        "silence_timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickles_the_handshake_answer_one_byte_per_second() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("trickle-hs", &server.url());
    s.handshake_timeout = Duration::from_millis(1500);
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut tcp = server.accept().await;
    let request = read_request(&mut tcp).await;
    let key = header(&request, "sec-websocket-key").unwrap();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    let trickle = tokio::spawn(async move {
        for b in answer.bytes() {
            if tcp.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let _second = server.accept().await;
    rec.stop().await;
    trickle.abort();

    let recs = records(&out);
    let failed = events(&recs, "connect_failed");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("handshake timed out after 1.5s")
            && error.contains("waiting for the server's answer to the WebSocket upgrade"),
        "{error}"
    );
    assert_logged("trickle-hs", &["Connection attempt failed.", "timed out"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_completes_the_handshake() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("mute", &server.url());
    s.handshake_timeout = Duration::from_millis(300);
    let rec = start(config(&out, vec![s]), BASE_NS);
    // Accept TCP, read the request, answer nothing; keep every socket open.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = server.accept().await;
        read_request(&mut tcp).await;
        held.push(tcp);
    }
    rec.stop().await;

    let recs = records(&out);
    let failed = events(&recs, "connect_failed");
    assert!(failed.len() >= 2, "{failed:?}");
    let error = failed[0]["error"].as_str().unwrap();
    assert!(error.contains("handshake timed out after 300ms"), "{error}");
    assert!(error.contains("raise handshake_timeout"), "{error}");
    assert_eq!(events(&recs, "connected").len(), 0);
    assert_logged(
        "mute",
        &["Connection attempt failed.", "timed out after 300ms"],
    );
}

/// Answers the first connections of the stream `stream` makes for the server's URL with the
/// raw HTTP `answers`, one each, then upgrades the next one and sends it one good message.
/// Returns when each connection arrived and the records.
async fn answer_then_upgrade(
    stream: impl FnOnce(&str) -> StreamConfig,
    answers: &[&str],
) -> (Vec<Instant>, Vec<serde_json::Value>) {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let rec = start(config(&out, vec![stream(&server.url())]), BASE_NS);
    let mut times = Vec::new();
    for answer in answers {
        let mut tcp = server.accept().await;
        times.push(Instant::now());
        read_request(&mut tcp).await;
        tcp.write_all(answer.as_bytes()).await.unwrap();
    }
    let mut tcp = server.accept().await;
    times.push(Instant::now());
    upgrade(&mut tcp).await;
    tcp.write_all(&frame(1, GOOD[0].as_bytes())).await.unwrap();
    wait_for(&rec, Duration::from_secs(10), |s| {
        s.streams[0].messages.load(Relaxed) >= 1
    })
    .await;
    rec.stop().await;
    (times, records(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_capped() {
    let answers = [
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 11\r\n\r\nslow down!\n",
        // A day: capped to retry_after_max (1 s).
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 86400\r\n\r\n",
    ];
    let stream = |url: &str| {
        let mut s = hostile_stream("retry-after", url);
        s.retry_after_max = Duration::from_secs(1);
        s
    };
    let (times, recs) = answer_then_upgrade(stream, &answers).await;

    // The backoff alone would have come back after 25-100 ms.
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(950) && gap < Duration::from_secs(5),
            "retried after {gap:?}, not after the 1 s asked for (capped)"
        );
    }
    let failed = events(&recs, "connect_failed");
    assert_eq!(failed[0]["http_status"], 429);
    assert_eq!(failed[0]["retry_after_ms"], 1000);
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 429 Too Many Requests")
            && error.contains("Retry-After: 1s")
            && error.contains("slow down!"),
        "{error}"
    );
    assert_eq!(failed[1]["http_status"], 503);
    assert_eq!(
        failed[1]["retry_after_ms"], 1000,
        "capped at retry_after_max"
    );
    assert_eq!(messages(&recs), [GOOD[0]]);
    assert_logged("retry-after", &["Retry-After"]);
}

/// Redirects (301, 302 and a 307 without `Location`) are not followed; each `connect_failed`
/// carries the status in `http_status` and, when given, the target (secrets masked) in
/// `location`, and the stream keeps trying its own URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_recorded_with_status_and_location() {
    let answers = [
        "HTTP/1.1 301 Moved Permanently\r\nLocation: wss://new.example/ws?token=s3cret\r\n\
         Content-Length: 0\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: /v2/raw\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 307 Temporary Redirect\r\nContent-Length: 0\r\n\r\n",
    ];
    let stream = |url: &str| hostile_stream("redirect", url);
    let (_, recs) = answer_then_upgrade(stream, &answers).await;

    let failed = events(&recs, "connect_failed");
    assert_eq!(failed.len(), 3, "{failed:?}");
    let want = [
        (301, Some("wss://new.example/ws?token=***")),
        (302, Some("/v2/raw")),
        (307, None),
    ];
    for (event, (code, location)) in failed.iter().zip(want) {
        assert_eq!(event["http_status"], code, "{event}");
        assert_eq!(event["location"].as_str(), location, "{event}");
        let error = event["error"].as_str().unwrap();
        assert!(error.contains(&format!("HTTP {code}")), "{error}");
        assert!(!event.to_string().contains("s3cret"), "{event}");
    }
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("redirected (HTTP 301) to wss://new.example/ws?token=***")
    );
    assert!(
        failed[2]["error"]
            .as_str()
            .unwrap()
            .contains("without a Location header")
    );
    assert_eq!(messages(&recs), [GOOD[0]], "the stream's own URL is kept");
    assert_logged("redirect", &["Connection attempt failed.", "HTTP 302"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_back_off_exponentially() {
    capture_logs();
    let (_tmp, out) = dirs();
    let server = RawServer::start().await;
    let mut s = hostile_stream("backoff", &server.url());
    s.backoff_initial = Duration::from_millis(100);
    s.backoff_max = Duration::from_secs(10);
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut times = Vec::new();
    for _ in 0..6 {
        let mut tcp = server.accept().await;
        times.push(Instant::now());
        read_request(&mut tcp).await;
        tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
    }
    rec.stop().await;

    // Equal jitter: the delay after failure k is in [b_k/2, b_k] with b_k = 100 ms * 2^k, so
    // every delay is at least the one two attempts before.
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for k in 0..gaps.len() - 2 {
        assert!(gaps[k + 2] >= gaps[k], "gaps {gaps:?}");
    }
    assert!(gaps[4] >= Duration::from_millis(800), "gaps {gaps:?}");
    let recs = records(&out);
    let error = events(&recs, "connect_failed")[0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("HTTP 200 OK instead of 101") && error.contains("\"hello\""),
        "{error}"
    );
}

/// One bad answer to the upgrade per case: the `connect_failed` error names what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshake_answers_are_named() {
    capture_logs();
    let huge = format!(
        "HTTP/1.1 101 Switching Protocols\r\n{}\r\n",
        "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
            .repeat(1000)
    );
    let cases: Vec<(String, &str)> = vec![
        (
            "SSH-2.0-OpenSSH_9.2\r\n\r\n".into(),
            "did not answer with HTTP",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"
                .into(),
            "Sec-WebSocket-Accept does not match",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n".into(),
            "without `Upgrade: websocket`",
        ),
        (
            "HTTP/1.1 302 Found\r\nLocation: wss://elsewhere.example/ws?key=s3cret\r\n\r\n".into(),
            "redirected (HTTP 302) to wss://elsewhere.example/ws?key=***",
        ),
        (huge, "larger than 65536 bytes"),
        (String::new(), "closed the connection without answering"),
    ];
    for (i, (answer, want)) in cases.into_iter().enumerate() {
        let name = format!("badhs{i}");
        let (_tmp, out) = dirs();
        let server = RawServer::start().await;
        let rec = start(
            config(&out, vec![hostile_stream(&name, &server.url())]),
            BASE_NS,
        );
        for _ in 0..2 {
            let mut tcp = server.accept().await;
            read_request(&mut tcp).await;
            let _ = tcp.write_all(answer.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
        rec.stop().await;
        let recs = records(&out);
        let failed = events(&recs, "connect_failed");
        let error = failed[0]["error"].as_str().unwrap();
        assert!(error.contains(want), "case {i}: {error:?} lacks {want:?}");
        assert!(!error.contains("s3cret"), "{error}");
        assert_logged(&name, &["Connection attempt failed.", want]);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP CONNECT proxies (`little_proxy` in tests/peers; tinyproxy is in tests/interop.rs).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_with_credentials_tunnels_and_refusals_are_named() {
    capture_logs();
    // Tunnels with Basic credentials from the proxy URL (percent-decoded).
    let (_tmp, out) = dirs();
    let mut server = TestServer::start().await;
    let (proxy, seen) = little_proxy(ProxyMode::Tunnel(Some("Basic dXNlcjpwQHNz"))).await;
    let mut s = hostile_stream("proxy-ok", &server.url());
    s.proxy = Some(wsrec::config::ProxySetting::Url(format!(
        "http://user:p%40ss@{proxy}"
    )));
    let rec = start(config(&out, vec![s]), BASE_NS);
    let mut conn = server.accept().await;
    conn.send_text(GOOD[0]).await;
    wait_for(&rec, Duration::from_secs(10), |s| {
        s.streams[0].messages.load(Relaxed) >= 1
    })
    .await;
    rec.stop().await;
    assert_eq!(messages(&records(&out)), [GOOD[0]]);
    let request = seen.lock().unwrap()[0].clone();
    assert!(
        request.starts_with(&format!("CONNECT {} HTTP/1.1\r\n", server.addr)),
        "{request}"
    );

    let cases: [(ProxyMode, &str); 3] = [
        (ProxyMode::Tunnel(Some("Basic other")), "wants credentials"),
        (ProxyMode::Refuse("403 Forbidden"), "refused to CONNECT"),
        (ProxyMode::Refuse("502 Bad Gateway"), "HTTP 502"),
    ];
    for (i, (mode, want)) in cases.into_iter().enumerate() {
        let name = format!("proxy-bad{i}");
        let (_tmp, out) = dirs();
        let (proxy, _) = little_proxy(mode).await;
        let mut s = hostile_stream(&name, "ws://127.0.0.1:9/never");
        s.proxy = Some(wsrec::config::ProxySetting::Url(format!(
            "http://user:proxy-secret@{proxy}"
        )));
        let rec = start(config(&out, vec![s]), BASE_NS);
        wait_for(&rec, Duration::from_secs(10), |s| {
            s.streams[0].connect_failures.load(Relaxed) >= 2
        })
        .await;
        rec.stop().await;
        let recs = records(&out);
        let error = events(&recs, "connect_failed")[0]["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            error.contains(want) && error.contains(&format!("proxy http://***:***@{proxy}")),
            "{error}"
        );
        assert!(!error.contains("proxy-secret"), "{error}");
    }
}

// ---------------------------------------------------------------------------------------------
// Local security.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_status_data_or_logs() {
    use std::os::unix::fs::PermissionsExt;
    capture_logs();
    let (tmp, out) = dirs();
    let (proxy, seen) = little_proxy(ProxyMode::Refuse("502 Bad Gateway")).await;
    let mut s = hostile_stream(
        "secretive",
        "ws://url-user:url-secret@127.0.0.1:9/feed?token=query-secret&x=1",
    );
    s.headers.insert(
        "X-Api-Key".into(),
        wsrec::config::Secret("header-secret".into()),
    );
    s.proxy = Some(wsrec::config::ProxySetting::Url(format!(
        "http://proxy-user:proxy-secret@{proxy}"
    )));
    let socket = tmp.path().join("status.sock");
    let mut cfg = config(&out, vec![s]);
    cfg.status_socket = Some(socket.clone());
    let rec = start(cfg, BASE_NS);
    wait_for(&rec, Duration::from_secs(10), |s| {
        s.streams[0].connect_failures.load(Relaxed) >= 2
    })
    .await;
    let snapshot = wsrec::observe::status::query(&socket).await.unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    rec.stop().await;

    assert_eq!(mode, 0o600, "status socket is owner-only");
    let status = serde_json::to_string(&snapshot).unwrap();
    let data: String = files(&out)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    let logs = log_lines("secretive").join("\n");
    assert!(status.contains("token=***"), "{status}");
    for secret in [
        "url-secret",
        "query-secret",
        "header-secret",
        "proxy-secret",
        "url-user",
    ] {
        for (what, text) in [("status", &status), ("data", &data), ("logs", &logs)] {
            assert!(
                !text.contains(secret),
                "{secret} leaked into {what}: {text}"
            );
        }
    }
    // Headers go to the WebSocket server only; the proxy sees CONNECT with its own credentials.
    let request = seen.lock().unwrap()[0].clone();
    assert!(!request.contains("header-secret"), "{request}");
    assert!(request.contains("Proxy-Authorization: Basic "), "{request}");
}

#[test]
fn stream_names_and_paths_cannot_leave_the_output_dir() {
    let bad: &[(&str, &str)] = &[
        ("name = '../up'", "stream name"),
        ("name = 'a/b'", "path separator"),
        ("name = '.hidden'", "must not start with"),
        ("name = 'x\\\\y'", "path separator"),
        (
            "name = 'ok'\npath = '/etc/{stream}.jsonl'",
            "outside the output directory",
        ),
        (
            "name = 'ok'\npath = '{stream}/../../x.jsonl'",
            "outside the output directory",
        ),
        (
            "name = 'ok'\npath = '../{stream}.jsonl'",
            "outside the output directory",
        ),
    ];
    for (fields, want) in bad {
        let text = format!("[[stream]]\nurl = 'ws://h/'\n{fields}\n");
        let err = wsrec::Config::parse_toml(&text)
            .and_then(wsrec::net::venue::resolve)
            .and_then(|c| c.validate(&wsrec::net::venue::Catalog).map(|()| c))
            .expect_err(fields)
            .to_string();
        assert!(err.contains(want), "{fields}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_clients_that_hang_cannot_stall_recording() {
    let (tmp, out) = dirs();
    let mut server = TestServer::start().await;
    let socket = tmp.path().join("status.sock");
    let mut cfg = config(&out, vec![hostile_stream("status-flood", &server.url())]);
    cfg.status_socket = Some(socket.clone());
    let rec = start(cfg, BASE_NS);
    let mut conn = server.accept().await;
    wait_for(&rec, Duration::from_secs(10), |_| socket.exists()).await;
    // Far more idle clients than the server has slots: connected, saying nothing.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::UnixStream::connect(&socket).await.unwrap());
    }
    let batch = numbered(0, 2000);
    conn.send_all(batch.clone()).await;
    wait_for(&rec, Duration::from_secs(10), |s| {
        s.streams[0].messages.load(Relaxed) >= 2000
    })
    .await;
    drop(idle);
    // Once they are gone, a real query is served again.
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(snapshot) = wsrec::observe::status::query(&socket).await {
            answered = Some(snapshot);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rec.stop().await;
    assert_eq!(answered.expect("status answered").streams[0].messages, 2000);
    assert_eq!(messages(&records(&out)), batch);
}
