//! Recording from real third-party servers on loopback: Python `websockets` and Node `ws`
//! (started from `tests/interop/`), with TLS from a test CA, permessage-deflate, and through
//! tinyproxy. What each server sent is compared with what was recorded, byte for byte.
//!
//! The servers are installed by `scripts/test.sh` (which also makes their absence a failure);
//! without them, a plain `cargo test` skips these tests with a loud message.
//!
//! Real time throughout: the servers live in other processes, so tokio's paused clock would
//! race their replies.

mod common;
mod peers;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use peers::*;
use serde_json::{Value, json};
use wsrec::config::{Compression, OutMessage, ProxySetting};

const SUB: &str = r#"{"op":"subscribe","args":["interop"]}"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The text the server sends after its ping is answered: each language spells JSON its own way.
fn pong_text(which: Impl, data: &str) -> String {
    match which {
        Impl::Python => format!(r#"{{"pong": "{data}"}}"#),
        Impl::Node => format!(r#"{{"pong":"{data}"}}"#),
    }
}

/// A script covering every kind of message, ending with `last`, and the payloads it sends.
fn wide_script(which: Impl, big: usize, last: Value) -> (Value, Vec<Payload>) {
    let odd_json = r#"{"price":"1.10", "qty" : 1e3,"list":[1,2.50],"s":"\u00e9"}"#;
    let plain = "plain text, ünïcödé ✓, a\nline break and a \"quote\"";
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let array: String = format!(
        "[{}]",
        (0..2000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let fragments: Vec<String> = array
        .as_bytes()
        .chunks(array.len() / 64 + 1)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert!(fragments.len() >= 60, "many fragments");
    let blob: Vec<u8> = (0..40_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let blob_fragments: Vec<String> = blob.chunks(1000).map(b64).collect();
    let steps = json!([
        {"op": "expect", "data": SUB},
        {"op": "text", "data": odd_json},
        {"op": "text", "data": plain},
        {"op": "binary", "data": b64(&all_bytes)},
        {"op": "fragments", "data": fragments},
        {"op": "binary_fragments", "data": blob_fragments},
        {"op": "big", "size": big},
        {"op": "ping", "data": "are you there"},
        {"op": "text", "data": "{}"},
        last,
    ]);
    let want = vec![
        Payload::Text(odd_json.into()),
        Payload::Text(plain.into()),
        Payload::Binary(all_bytes),
        Payload::Text(array.into_bytes()),
        Payload::Binary(blob),
        Payload::Text(big_text(big).into_bytes()),
        Payload::Text(pong_text(which, "are you there").into_bytes()),
        Payload::Text(b"{}".to_vec()),
    ];
    (steps, want)
}

/// A stream with test settings that subscribes with [`SUB`].
fn interop_stream(name: &str, url: &str) -> wsrec::StreamConfig {
    let mut s = stream(name, url);
    s.subscribe = vec![OutMessage(SUB.into())];
    s
}

/// Runs a recorder on `s` until its first connection has ended and a second one is up (the
/// scripted servers run their script once, then keep later connections idle), and returns the
/// recording's directory.
async fn record_until_reconnected(
    tmp: &std::path::Path,
    s: wsrec::StreamConfig,
) -> std::path::PathBuf {
    let out = tmp.join("data");
    std::fs::create_dir_all(&out).unwrap();
    let rec = start(config(&out, vec![s]), BASE_NS);
    wait_for(&rec, Duration::from_secs(60), |st| {
        st.streams[0].connections.load(Relaxed) >= 2
    })
    .await;
    rec.stop().await;
    out
}

async fn records_every_kind_of_message(which: Impl) {
    let tmp = tempfile::tempdir().unwrap();
    let (steps, want) = wide_script(
        which,
        10_000_000,
        json!({"op": "close", "code": 4001, "reason": "bye now"}),
    );
    let Some(server) = scripted_server(which, tmp.path(), &steps, &ServerOptions::default()) else {
        return;
    };
    let out =
        record_until_reconnected(tmp.path(), interop_stream("wide", &server.url("/feed"))).await;

    assert_payloads(&payloads(&out), &want);
    let recs = records(&out);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], "closed_by_server", "{}", disc[0]);
    assert_eq!(disc[0]["code"], 4001);
    assert_eq!(disc[0]["close_reason"], "bye now");
    assert_eq!(disc[0]["messages"], want.len());
    assert_eq!(
        events(&recs, "connected").len(),
        2,
        "reconnected after the close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_every_kind_of_message_byte_for_byte() {
    records_every_kind_of_message(Impl::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_every_kind_of_message_byte_for_byte() {
    records_every_kind_of_message(Impl::Node).await;
}

async fn abrupt_close_keeps_everything_sent(which: Impl) {
    let tmp = tempfile::tempdir().unwrap();
    let (steps, want) = wide_script(which, 1_000_000, json!({"op": "abort"}));
    let Some(server) = scripted_server(which, tmp.path(), &steps, &ServerOptions::default()) else {
        return;
    };
    let out =
        record_until_reconnected(tmp.path(), interop_stream("abrupt", &server.url("/"))).await;

    assert_payloads(&payloads(&out), &want);
    let recs = records(&out);
    let disc = events(&recs, "disconnected");
    assert_eq!(disc[0]["reason"], "error", "{}", disc[0]);
    let detail = disc[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("without a WebSocket close frame"),
        "{detail}"
    );
    assert_eq!(disc[0]["messages"], want.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_abrupt_close_loses_nothing() {
    abrupt_close_keeps_everything_sent(Impl::Python).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_abrupt_close_loses_nothing() {
    abrupt_close_keeps_everything_sent(Impl::Node).await;
}

/// Records a compressible script with deflate offered as `offer` to a server started with
/// `server`, checks the negotiated parameters and that the recording is the decompressed text.
async fn deflate_case(
    which: Impl,
    server: ServerOptions,
    offer: (Option<u8>, bool),
    want_extensions: Option<&str>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let mut steps = vec![json!({"op": "expect", "data": SUB})];
    let mut want = Vec::new();
    for i in 0..200 {
        let m = format!(
            r#"{{"topic":"trade.BTCUSDT","ts":{},"price":"{}.5","qty":"0.{i:03}"}}"#,
            1_795_517_990_000u64 + i,
            90_000 + i
        );
        steps.push(json!({"op": "text", "data": m}));
        want.push(Payload::Text(m.into_bytes()));
    }
    let array = format!(
        "[{}]",
        (0..5000)
            .map(|i| (i % 17).to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let fragments: Vec<String> = array
        .as_bytes()
        .chunks(500)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    steps.push(json!({"op": "fragments", "data": fragments}));
    want.push(Payload::Text(array.into_bytes()));
    steps.push(json!({"op": "big", "size": 2_000_000}));
    want.push(Payload::Text(big_text(2_000_000).into_bytes()));
    let blob: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
    steps.push(json!({"op": "binary", "data": b64(&blob)}));
    want.push(Payload::Binary(blob));
    steps.push(json!({"op": "close", "code": 1000, "reason": "done"}));

    let Some(srv) = scripted_server(which, tmp.path(), &Value::Array(steps), &server) else {
        return;
    };
    let mut s = interop_stream("deflate", &srv.url("/"));
    if want_extensions.is_some() || offer.0.is_some() || offer.1 {
        s.compression = Compression::Deflate;
    }
    s.deflate_server_max_window_bits = offer.0;
    s.deflate_server_no_context_takeover = offer.1;
    let out = record_until_reconnected(tmp.path(), s).await;

    assert_payloads(&payloads(&out), &want);
    let recs = records(&out);
    let connected = events(&recs, "connected");
    assert_eq!(
        connected[0].get("extensions").and_then(Value::as_str),
        want_extensions,
        "{}",
        connected[0]
    );
    assert_eq!(events(&recs, "disconnected")[0]["code"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_deflate_with_its_default_window() {
    let server = ServerOptions {
        deflate: true,
        server_max_window_bits: Some(12),
        ..ServerOptions::default()
    };
    deflate_case(
        Impl::Python,
        server,
        (None, false),
        Some("permessage-deflate; server_max_window_bits=12"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_deflate_honours_no_context_takeover_and_window_bits() {
    let server = ServerOptions {
        deflate: true,
        ..ServerOptions::default()
    };
    deflate_case(
        Impl::Python,
        server,
        (Some(10), true),
        Some("permessage-deflate; server_max_window_bits=10; server_no_context_takeover"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_deflate_with_server_side_no_context_takeover_and_window_bits() {
    let server = ServerOptions {
        deflate: true,
        server_no_context_takeover: true,
        server_max_window_bits: Some(10),
        ..ServerOptions::default()
    };
    deflate_case(
        Impl::Node,
        server,
        (None, false),
        Some("permessage-deflate; server_max_window_bits=10; server_no_context_takeover"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_deflate_honours_requested_window_bits() {
    let server = ServerOptions {
        deflate: true,
        ..ServerOptions::default()
    };
    deflate_case(
        Impl::Node,
        server,
        (Some(9), true),
        Some("permessage-deflate; server_max_window_bits=9; server_no_context_takeover"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_is_off_by_default_even_when_the_server_offers_it() {
    let server = ServerOptions {
        deflate: true,
        ..ServerOptions::default()
    };
    deflate_case(Impl::Python, server, (None, false), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_over_tls_with_a_test_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "interop");
    let (cert, key) = pki.leaf("localhost", &["localhost", "127.0.0.1"], false);
    let (steps, want) = wide_script(
        Impl::Python,
        1_000_000,
        json!({"op": "close", "code": 1000, "reason": "tls done"}),
    );
    let options = ServerOptions {
        tls: Some((cert, key)),
        deflate: true,
        ..ServerOptions::default()
    };
    let Some(server) = scripted_server(Impl::Python, tmp.path(), &steps, &options) else {
        return;
    };
    let mut s = interop_stream("tls", &format!("wss://localhost:{}/secure", server.port));
    s.ca_file = Some(pki.ca_pem.clone());
    s.compression = Compression::Deflate;
    let out = record_until_reconnected(tmp.path(), s).await;

    assert_payloads(&payloads(&out), &want);
    let recs = records(&out);
    assert_eq!(events(&recs, "connect_failed").len(), 0);
    assert_eq!(events(&recs, "disconnected")[0]["close_reason"], "tls done");
}

/// Through tinyproxy (HTTP CONNECT) to a Python server, plain and over TLS end to end.
async fn through_tinyproxy(tls: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let Some(proxy) = Tinyproxy::start(tmp.path()) else {
        return;
    };
    let mut options = ServerOptions::default();
    let pki = Pki::new(tmp.path(), "proxy");
    if tls {
        options.tls = Some(pki.leaf("localhost", &["localhost"], false));
    }
    let (steps, want) = wide_script(
        Impl::Python,
        100_000,
        json!({"op": "close", "code": 1000, "reason": "via proxy"}),
    );
    let Some(server) = scripted_server(Impl::Python, tmp.path(), &steps, &options) else {
        return;
    };
    let scheme = if tls { "wss" } else { "ws" };
    let mut s = interop_stream(
        &format!("proxied-{scheme}"),
        &format!("{scheme}://localhost:{}/p", server.port),
    );
    s.proxy = Some(ProxySetting::Url(format!(
        "http://127.0.0.1:{}",
        proxy.port
    )));
    s.ca_file = tls.then(|| pki.ca_pem.clone());
    let out = record_until_reconnected(tmp.path(), s).await;

    assert_payloads(&payloads(&out), &want);
    let recs = records(&out);
    assert_eq!(
        events(&recs, "disconnected")[0]["close_reason"],
        "via proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_connect_tunnel_ws() {
    through_tinyproxy(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_connect_tunnel_wss() {
    through_tinyproxy(true).await;
}
