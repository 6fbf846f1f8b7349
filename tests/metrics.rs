//! The metrics endpoint end to end: a recorder with `metrics_listen` on an ephemeral port records
//! from an in-process server, the test scrapes `/metrics` over real TCP, and a real parser reads
//! the body: Python `prometheus_client` (OpenMetrics and Prometheus text), installed pinned by
//! `scripts/test.sh`. Without it these tests fail, saying how to install it.
//!
//! Real time throughout: the scrapes are real TCP and the parser another process.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsrec::observe::metrics::{OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};

/// The `prometheus_client` version `scripts/test.sh` installs.
const PROMETHEUS_CLIENT: &str = "prometheus_client==0.26.0";

/// What Prometheus sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,\
    application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// A Python that has `prometheus_client`; the test fails when it is missing: a metrics format
/// nobody parsed is untested.
fn python() -> Command {
    python_with(
        "prometheus_client",
        PROMETHEUS_CLIENT,
        "to parse the scraped metrics",
    )
}

/// Parses `body` with `prometheus_client`'s OpenMetrics or Prometheus text parser. Returns
/// every sample as `name{labels}` (labels sorted) → value, and each family's (type, unit, help).
fn parse(body: &str, openmetrics: bool) -> (BTreeMap<String, f64>, BTreeMap<String, Value>) {
    let format = if openmetrics {
        "openmetrics"
    } else {
        "prometheus"
    };
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as prom
parse = om if sys.argv[1] == "openmetrics" else prom
out = []
for f in parse(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "unit": f.unit, "help": f.documentation,
                "samples": [[s.name, s.labels, s.value] for s in f.samples]})
print(json.dumps(out))
"#;
    let mut child = python()
        .args(["-c", SCRIPT, format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Dropped at the end of the statement: the script sees end of input.
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the {format} body: {}\nbody:\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut samples = BTreeMap::new();
    let mut meta = BTreeMap::new();
    for f in families {
        for s in f["samples"].as_array().unwrap() {
            let labels: BTreeMap<String, String> = serde_json::from_value(s[1].clone()).unwrap();
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let key = format!("{}{{{}}}", s[0].as_str().unwrap(), labels.join(","));
            assert!(
                samples
                    .insert(key.clone(), s[2].as_f64().unwrap())
                    .is_none(),
                "{key} twice"
            );
        }
        let name = f["name"].as_str().unwrap().to_owned();
        meta.insert(name, f);
    }
    (samples, meta)
}

/// One HTTP exchange: sends `request` as is, returns the status code, the headers (lower-case
/// names) and the body, checking `Content-Length`.
async fn http(addr: SocketAddr, request: &str) -> (u16, BTreeMap<String, String>, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("the server did not close the connection")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("no end of head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap();
    assert!(status.starts_with("HTTP/1.1 "), "{status}");
    let code = status[9..12].parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    assert_eq!(headers["connection"], "close");
    if !request.starts_with("HEAD ") {
        assert_eq!(headers["content-length"], body.len().to_string(), "{text}");
    }
    (code, headers, body.to_owned())
}

async fn scrape(addr: SocketAddr, accept: Option<&str>) -> (String, String) {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let (code, headers, body) = http(
        addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n{accept}\r\n"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    (headers["content-type"].clone(), body)
}

/// The address the endpoint listens on, once the recorder has bound it.
async fn metrics_addr(rec: &Running) -> SocketAddr {
    for _ in 0..1000 {
        if let Some(addr) = rec.stats.metrics_addr.get() {
            return *addr;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the metrics endpoint never published its address");
}

fn ephemeral() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[tokio::test]
async fn scrapes_parse_with_prometheus_client_and_match_what_was_sent() {
    python(); // fail first, and clearly, without the parser
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut quiet = TestServer::start().await;
    let mut config = config(
        dir.path(),
        vec![stream("feed", &server.url()), stream("quiet", &quiet.url())],
    );
    config.metrics_listen = ephemeral();
    config.queue_capacity = 1234;
    // Tags, top-level and the stream's own: an info sample per stream that has any, the value
    // escaped (a quote and a backslash), a key that starts with a digit still a label name.
    config.tags.insert("region".into(), "eu-west-1".into());
    config.streams[0]
        .tags
        .insert("role".into(), "primary".into());
    config.streams[0]
        .tags
        .insert("1d".into(), r#"a"b\c"#.into());
    let rec = start(config, BASE_NS);
    let addr = metrics_addr(&rec).await;
    assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0);

    let mut conn = server.accept().await;
    let _quiet_conn = quiet.accept().await;
    let sent: Vec<String> = (0..25).map(|i| format!(r#"{{"i":{i},"p":"x"}}"#)).collect();
    let bytes: usize = sent.iter().map(String::len).sum();
    conn.send_all(sent.clone()).await;
    rec.wait_messages(25).await;
    rec.wait_until(|s| s.streams[1].state() == wsrec::observe::stats::ConnState::Connected)
        .await;

    let (om_type, om_body) = scrape(addr, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(om_type, OPENMETRICS_CONTENT_TYPE);
    assert!(om_body.ends_with("# EOF\n"), "{om_body}");
    let (prom_type, prom_body) = scrape(addr, None).await;
    assert_eq!(prom_type, PROMETHEUS_CONTENT_TYPE);
    assert!(!prom_body.contains("# EOF"));

    let (om, om_meta) = parse(&om_body, true);
    let (prom, prom_meta) = parse(&prom_body, false);
    for (format, samples) in [("OpenMetrics", &om), ("Prometheus", &prom)] {
        let get = |key: &str| {
            *samples
                .get(key)
                .unwrap_or_else(|| panic!("{format}: no sample {key} in {samples:#?}"))
        };
        assert_eq!(get("wsrec_messages_total{stream=feed}"), 25.0, "{format}");
        assert_eq!(get("wsrec_messages_total{stream=quiet}"), 0.0, "{format}");
        assert_eq!(
            get("wsrec_message_bytes_total{stream=feed}"),
            bytes as f64,
            "{format}"
        );
        assert_eq!(get("wsrec_connections_total{stream=feed}"), 1.0);
        assert_eq!(get("wsrec_reconnects_total{stream=feed}"), 0.0);
        assert_eq!(get("wsrec_disconnects_total{stream=feed}"), 0.0);
        assert_eq!(get("wsrec_connect_failures_total{stream=feed}"), 0.0);
        assert_eq!(get("wsrec_dropped_messages_total{stream=feed}"), 0.0);
        assert_eq!(get("wsrec_lines_lost_total{stream=feed}"), 0.0);
        for stream in ["feed", "quiet"] {
            assert_eq!(
                get(&format!(
                    "wsrec_stream_state{{state=connected,stream={stream}}}"
                )),
                1.0
            );
            for other in ["connecting", "backoff", "stopped"] {
                assert_eq!(
                    get(&format!(
                        "wsrec_stream_state{{state={other},stream={stream}}}"
                    )),
                    0.0
                );
            }
        }
        let age = get("wsrec_last_message_age_seconds{stream=feed}");
        assert!((0.0..60.0).contains(&age), "{format}: age {age}");
        assert!(!samples.contains_key("wsrec_last_message_age_seconds{stream=quiet}"));
        assert_eq!(get("wsrec_queue_capacity_messages{}"), 1234.0);
        assert!(get("wsrec_queue_depth_messages{}") <= 1234.0);
        assert_eq!(get("wsrec_files_closed_total{}"), 0.0);
        assert_eq!(get("wsrec_files_compressed_total{}"), 0.0);
        assert_eq!(get("wsrec_compress_errors_total{}"), 0.0);
        assert_eq!(get("wsrec_compress_backlog_files{}"), 0.0);
        assert_eq!(get("wsrec_write_errors_total{}"), 0.0);
        assert_eq!(get("wsrec_disk_level{}"), 0.0);
        assert!(get("wsrec_uptime_seconds{}") >= 0.0);
        assert!(get("wsrec_start_time_seconds{}") * 1e9 >= (BASE_NS - 60_000_000_000) as f64);
        assert_eq!(
            get(&format!(
                "wsrec_build_info{{version={}}}",
                env!("CARGO_PKG_VERSION")
            )),
            1.0
        );
        assert_eq!(
            get(
                r#"wsrec_stream_tags_info{stream=feed,tag_1d=a"b\c,tag_region=eu-west-1,tag_role=primary}"#
            ),
            1.0
        );
        assert_eq!(
            get("wsrec_stream_tags_info{stream=quiet,tag_region=eu-west-1}"),
            1.0
        );
    }
    // Both formats carry the same series.
    assert_eq!(
        om.keys().collect::<Vec<_>>(),
        prom.keys().collect::<Vec<_>>()
    );
    // Types, units and help as declared: counters are counters in both.
    assert_eq!(om_meta["wsrec_messages"]["type"], "counter");
    assert_eq!(prom_meta["wsrec_messages"]["type"], "counter");
    assert_eq!(om_meta["wsrec_message_bytes"]["unit"], "bytes");
    assert_eq!(om_meta["wsrec_build"]["type"], "info");
    assert_eq!(om_meta["wsrec_stream_tags"]["type"], "info");
    assert_eq!(om_meta["wsrec_last_message_age_seconds"]["type"], "gauge");
    assert_eq!(om_meta["wsrec_last_message_age_seconds"]["unit"], "seconds");
    for (name, f) in om_meta.iter().chain(&prom_meta) {
        assert!(name.starts_with("wsrec_"), "{name}");
        assert!(
            !f["help"].as_str().unwrap().is_empty(),
            "{name} has no HELP"
        );
    }

    // The counters move with the data: ten more messages, a reconnect.
    conn.send_all((0..10).map(|i| format!("{{\"more\":{i}}}")))
        .await;
    rec.wait_messages(35).await;
    conn.close(1000, "bye").await;
    let mut conn = server.accept().await;
    conn.send_text("{\"after\":1}").await;
    rec.wait_messages(36).await;
    let (_, body) = scrape(addr, Some("application/openmetrics-text")).await;
    let (om, _) = parse(&body, true);
    assert_eq!(om["wsrec_messages_total{stream=feed}"], 36.0);
    assert_eq!(om["wsrec_connections_total{stream=feed}"], 2.0);
    assert_eq!(om["wsrec_reconnects_total{stream=feed}"], 1.0);
    assert_eq!(om["wsrec_disconnects_total{stream=feed}"], 1.0);

    rec.stop().await;
    // The endpoint goes away with the recorder.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serves_only_get_metrics_and_bounds_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let mut config = config(dir.path(), vec![stream("edges", &server.url())]);
    config.metrics_listen = ephemeral();
    let rec = start(config, BASE_NS);
    let addr = metrics_addr(&rec).await;

    let (code, _, body) = http(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(code, 404);
    assert!(body.contains("/metrics"), "{body}");
    // A query string does not matter; HTTP/1.0 is fine.
    let (code, _, body) = http(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert_eq!(code, 200);
    assert!(body.contains("wsrec_messages_total{stream=\"edges\"}"));
    let (code, headers, body) = http(addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], PROMETHEUS_CONTENT_TYPE);
    assert!(body.is_empty());
    let (code, headers, _) = http(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(code, 405);
    assert_eq!(headers["allow"], "GET, HEAD");
    let (code, _, _) = http(addr, "\x16\x03\x01 not http\r\n\r\n").await;
    assert_eq!(code, 400);
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(wsrec::observe::metrics::MAX_REQUEST_BYTES)
    );
    let (code, _, _) = http(addr, &huge).await;
    assert_eq!(code, 431);

    // A client that connects and says nothing holds no slot the scraper needs.
    let _idle: Vec<TcpStream> = futures::future::join_all(
        (0..40).map(|_| async { TcpStream::connect(addr).await.unwrap() }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Over the client cap, new connections are closed at once; once the idle ones time out
    // (5 s), scrapes work again. Either way the recorder is unaffected.
    let mut ok = false;
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = tcp.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await;
        let mut raw = Vec::new();
        let _ = tcp.read_to_end(&mut raw).await;
        if raw.starts_with(b"HTTP/1.1 200 OK") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the endpoint never recovered from idle clients");
    rec.stop().await;
}

#[tokio::test]
async fn a_taken_port_stops_the_recorder_before_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let mut server = TestServer::start().await;
    let mut config = config(dir.path(), vec![stream("taken", &server.url())]);
    config.metrics_listen = Some(taken_addr);
    let err = wsrec::Recorder::new(config)
        .unwrap()
        .run(tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("started on a taken port");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            wsrec::RunError::Metrics(wsrec::observe::metrics::MetricsError::InUse { .. })
        ),
        "{err:?}"
    );
    assert!(msg.contains(&taken_addr.to_string()), "{msg}");
    assert!(msg.contains("metrics_listen"), "{msg}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), server.accept())
            .await
            .is_err(),
        "the recorder connected although it could not start"
    );
    assert!(common::files(dir.path()).is_empty());
}

#[test]
fn the_binary_exits_2_with_a_clear_message_on_a_taken_port_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_wsrec"))
        .args([
            "record",
            "ws://127.0.0.1:9/feed",
            "--metrics-listen",
            &taken_addr,
            "--status-socket",
            "",
            "-o",
        ])
        .arg(dir.path().join("out"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Bad input, found before anything is made: no output directory.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&taken_addr), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "{stderr}");
}

#[test]
fn the_deployment_config_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/wsrec.toml");
    let config =
        wsrec::commands::load_config(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(config.metrics_listen.is_some());
}
