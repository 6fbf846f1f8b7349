//! Snapshot lines (REST order-book snapshots the recorder fetches) from a batch item to every
//! reader: batches of messages, events and snapshots go through the real writer and disk worker
//! into real files (envelope and raw format), then the binary's `cat`, `stats`, `verify`,
//! `replay` and `merge` are run on them.

mod common;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;
use wsrec::batch::{Batch, Kind};
use wsrec::clock::Clock;
use wsrec::config::{Format, StreamConfig, WhenFull};
use wsrec::observe::stats::{Stats, StreamStats};
use wsrec::store::disk::Disk;
use wsrec::store::writer::{StreamSink, Writer, WriterSettings};

/// 2026-11-24T11:00:10Z: clear of an hour boundary, so each recording is one file.
const T0: u64 = 1_795_518_010_000_000_000;
const MS: u64 = 1_000_000;

/// A snapshot body as a venue sends it: JSON with spacing and number forms to keep as they are.
const BODY: &str = r#"{"lastUpdateId": 1027024, "bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200", "12.00000000"]]}"#;
/// A body that is not JSON (a proxy's error page with a line break).
const HTML: &str = "<html>busy\n</html>";

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

/// Runs the binary; returns stdout, after checking it exited with `code`.
fn run(args: &[&str], paths: &[&Path], code: i32) -> String {
    let out = wsrec().args(args).args(paths).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {stdout}\n{stderr}"
    );
    stdout
}

/// Writes `batches` of stream `book` in `format` under `dir` through the real writer, until it
/// has closed every file.
async fn write(dir: &Path, format: Format, batches: Vec<Batch>) {
    let mut config = StreamConfig::new("book", "wss://venue.test/ws");
    config.format = format;
    let stream = Arc::new(StreamStats::new("book", "wss://venue.test/ws"));
    let stats = Arc::new(Stats::new(vec![stream.clone()], 1000));
    let (tx, rx) = wsrec::queue::queue(1000, WhenFull::Block, 1);
    let writer = Writer::new(
        WriterSettings {
            output_dir: dir.to_owned(),
            clock: Clock::System,
            flush_interval: Duration::from_secs(1),
            disk_warn: None,
            disk_stop: None,
        },
        vec![StreamSink::new(&config, stream.clone(), dir)],
        rx,
        Disk::new(stats.clone(), None),
        stats,
    );
    let mut lines = 0;
    for b in batches {
        lines += b.items.len() as u64;
        tx.send(b, &mut 0).await;
    }
    drop(tx);
    writer.run().await;
    assert_eq!(
        stream
            .lines_written
            .load(std::sync::atomic::Ordering::Relaxed),
        lines,
        "every item is a line, snapshots included"
    );
}

/// A snapshot of `symbol` for `host`'s connection, received at `at` ms.
fn snapshot(b: &mut Batch, at: u64, host: &str, body: &str) {
    b.push_snapshot(
        T0 + at * MS,
        |f| {
            f.str("symbol", "BNBBTC")
                .str(
                    "url",
                    &format!("https://{host}/api/v3/depth?symbol=BNBBTC&limit=5000"),
                )
                .num("status", 200)
                .num("sent_ts", T0 + (at - 2) * MS)
                .num("attempts", 1)
                .num("first_id", 0);
        },
        body.as_bytes(),
    );
}

fn connected(b: &mut Batch, at: u64, pid: u64) {
    b.push_event(T0 + at * MS, "connected", |f| {
        f.str("url", "wss://venue.test/ws").num("pid", pid);
    });
}

fn disconnected(b: &mut Batch, at: u64, reason: &str) {
    b.push_event(T0 + at * MS, "disconnected", |f| {
        f.str("reason", reason);
    });
}

fn text(b: &mut Batch, at: u64, msg: &str) {
    b.push_message(T0 + at * MS, Kind::Text, msg.as_bytes());
}

/// One connection: connected, a diff, a snapshot, two diffs, a snapshot whose body is not JSON,
/// a failed fetch, a diff, disconnected.
fn one_connection() -> Batch {
    let mut b = Batch::new(0, 1);
    connected(&mut b, 0, 1);
    text(&mut b, 10, r#"{"u":1}"#);
    snapshot(&mut b, 20, "api.venue.test", BODY);
    text(&mut b, 30, r#"{"u":2}"#);
    text(&mut b, 40, r#"{"u":3}"#);
    snapshot(&mut b, 50, "api.venue.test", HTML);
    b.push_event(T0 + 60 * MS, "snapshot_failed", |f| {
        f.str("symbol", "ETHBTC")
            .str(
                "url",
                "https://api.venue.test/api/v3/depth?symbol=ETHBTC&limit=5000",
            )
            .num("status", 429)
            .str("error", "HTTP 429 Too Many Requests")
            .num("attempts", 5);
    });
    text(&mut b, 70, "[4]");
    disconnected(&mut b, 80, "shutdown");
    b
}

/// The files under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    common::all_files(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

/// The snapshot line the writer must write for `body` at `at` ms (conn 1).
fn snapshot_line(at: u64, host: &str, body_member: &str) -> String {
    format!(
        r#"{{"ts":{},"stream":"book","conn":1,"snapshot":{{"symbol":"BNBBTC","url":"https://{host}/api/v3/depth?symbol=BNBBTC&limit=5000","status":200,"sent_ts":{},"attempts":1,"first_id":0}},{body_member}}}"#,
        T0 + at * MS,
        T0 + (at - 2) * MS
    )
}

#[tokio::test]
async fn snapshot_lines_reach_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Format::Envelope, vec![one_connection()]).await;
    let data = files_ending(dir.path(), ".jsonl");
    assert_eq!(data.len(), 1, "{data:?}");
    let text = std::fs::read_to_string(&data[0]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    // The body byte-for-byte in `msg`; the one that is not JSON in `text`; no `seq` on either,
    // and the messages' `seq` runs on across them.
    assert_eq!(
        lines[2],
        snapshot_line(20, "api.venue.test", &format!(r#""msg":{BODY}"#))
    );
    assert_eq!(
        lines[5],
        snapshot_line(50, "api.venue.test", r#""text":"<html>busy\n</html>""#)
    );
    let seqs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(",\"seq\":").nth(1))
        .map(|r| &r[..1])
        .collect();
    assert_eq!(seqs, ["0", "1", "2", "3"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::manifest_path(&data[0])).unwrap()).unwrap();
    assert_eq!(manifest["lines"], 9);
    assert_eq!(manifest["snapshots"], 2);
    assert_eq!(manifest["events"], 3);
    assert_eq!(manifest["connections"][0]["messages"], 4);

    let d = dir.path();
    // cat: every line as written, snapshots included; --msg: the bodies in their place.
    assert_eq!(run(&["cat"], &[d], 0), text);
    assert_eq!(
        run(&["cat", "--msg"], &[d], 0),
        format!("{{\"u\":1}}\n{BODY}\n{{\"u\":2}}\n{{\"u\":3}}\n{HTML}\n[4]\n")
    );
    assert_eq!(
        run(&["cat", "--msg", "--no-snapshots"], &[d], 0),
        "{\"u\":1}\n{\"u\":2}\n{\"u\":3}\n[4]\n"
    );
    let no_snap = run(&["cat", "--no-snapshots"], &[d], 0);
    assert_eq!(no_snap.lines().count(), 7);
    assert!(!no_snap.contains("\"snapshot\":"), "{no_snap}");

    // stats: a snapshots column in JSON and CSV.
    let stats: serde_json::Value =
        serde_json::from_str(&run(&["stats", "--json"], &[d], 0)).unwrap();
    let total = &stats["streams"][0]["total"];
    assert_eq!(
        (total["messages"].as_u64(), total["snapshots"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(total["largest"], 7, "bodies are not messages: {total}");
    let csv = run(&["stats", "--csv"], &[d], 0);
    assert!(csv.starts_with("stream,hour_start,messages,bytes,rate_per_sec,largest_bytes,seq_gaps,disconnects,snapshots\n"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("book,total,4,") && l.ends_with(",0,0,2")),
        "{csv}"
    );
    let table = run(&["stats"], &[d], 0);
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .ends_with("disconnects  snapshots"),
        "{table}"
    );

    // verify: OK, the snapshots counted, the failed fetch a warning naming symbol and error.
    let report: serde_json::Value =
        serde_json::from_str(&run(&["verify", "--json"], &[d], 0)).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(
        (report["messages"].as_u64(), report["snapshots"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(report["streams"][0]["snapshots"], 2);
    assert_eq!(report["streams"][0]["snapshot_failures"], 1);
    assert_eq!(report["streams"][0]["seq_gaps"], 0);
    assert_eq!(report["manifests_checked"], 1);
    assert_eq!(report["warnings"], 1);
    let issue = &report["issues"][0];
    assert_eq!(
        (issue["kind"].as_str(), issue["severity"].as_str()),
        (Some("snapshot_failed"), Some("warning"))
    );
    let detail = issue["detail"].as_str().unwrap();
    for want in ["ETHBTC", "HTTP 429 Too Many Requests", "5 attempt(s)"] {
        assert!(detail.contains(want), "{detail}");
    }
    let text_report = run(&["verify"], &[d], 0);
    assert!(
        text_report.contains("4 messages, 3 events, 2 snapshots;"),
        "{text_report}"
    );
}

#[tokio::test]
async fn raw_format_puts_snapshot_lines_in_the_events_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Format::Raw, vec![one_connection()]).await;
    let sidecar = files_ending(dir.path(), ".events.ndjson");
    assert_eq!(sidecar.len(), 1);
    let events = std::fs::read_to_string(&sidecar[0]).unwrap();
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 5, "{events}");
    assert_eq!(
        lines[1],
        snapshot_line(20, "api.venue.test", &format!(r#""msg":{BODY}"#))
    );
    assert!(
        lines[2].contains(r#""text":"<html>busy\n</html>""#),
        "{events}"
    );
    let data = files_ending(dir.path(), ".jsonl");
    assert_eq!(
        std::fs::read_to_string(&data[0]).unwrap(),
        "{\"u\":1}\n{\"u\":2}\n{\"u\":3}\n[4]\n",
        "the data file holds only the WebSocket messages"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::manifest_path(&sidecar[0])).unwrap())
            .unwrap();
    assert_eq!(
        (manifest["lines"].as_u64(), manifest["snapshots"].as_u64()),
        (Some(5), Some(2))
    );
    let report: serde_json::Value =
        serde_json::from_str(&run(&["verify", "--json"], &[dir.path()], 0)).unwrap();
    assert_eq!(report["snapshots"], 2, "{report:#}");
    assert_eq!(report["messages"], 4, "{report:#}");
}

#[tokio::test]
async fn replay_sends_no_snapshot_and_says_how_many_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Format::Envelope, vec![one_connection()]).await;
    let mut child = wsrec()
        .args(["replay", "--listen", "127.0.0.1:0", "--speed", "max"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait = Duration::from_secs(60);
    let banner = rx
        .recv_timeout(wait)
        .expect("replay prints where it listens");
    let at = banner.find("ws://").expect(&banner);
    let addr = &banner[at..][..banner[at + 5..].find('/').expect(&banner) + 5];
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{addr}/book"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut close = None;
    while let Some(m) = ws.next().await {
        match m.unwrap() {
            Message::Close(f) => {
                close = f.map(|f| u16::from(f.code));
                break;
            }
            Message::Text(t) => got.push(t.to_string()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(close, Some(1000));
    assert_eq!(got, [r#"{"u":1}"#, r#"{"u":2}"#, r#"{"u":3}"#, "[4]"]);
    let said = loop {
        let line = rx
            .recv_timeout(wait)
            .expect("replay reports the skipped snapshots");
        if line.contains("snapshot") {
            break line;
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(said.contains("skipped 2 snapshot line(s)"), "{said}");
}

/// Source A: snapshot at 25 ms, down at 35 ms. Source B: a snapshot at 26 ms (while the
/// output takes A's messages) and one at 45 ms (after the output switched to B).
fn two_sources() -> (Batch, Batch) {
    let mut x = Batch::new(0, 1);
    connected(&mut x, 0, 1);
    text(&mut x, 10, r#"{"u":1}"#);
    text(&mut x, 20, r#"{"u":2}"#);
    snapshot(&mut x, 25, "a.venue.test", BODY);
    text(&mut x, 30, r#"{"u":3}"#);
    disconnected(&mut x, 35, "error");
    let mut y = Batch::new(0, 1);
    connected(&mut y, 1, 2);
    text(&mut y, 11, r#"{"u":1}"#);
    text(&mut y, 21, r#"{"u":2}"#);
    snapshot(&mut y, 26, "b.venue.test", BODY);
    text(&mut y, 31, r#"{"u":3}"#);
    text(&mut y, 40, r#"{"u":4}"#);
    snapshot(&mut y, 45, "b.venue.test", r#"{"lastUpdateId":2}"#);
    text(&mut y, 50, r#"{"u":5}"#);
    disconnected(&mut y, 60, "shutdown");
    (x, y)
}

#[tokio::test]
async fn merge_keeps_each_snapshot_of_the_source_it_takes_once() {
    let root = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("out"),
    );
    let (x, y) = two_sources();
    write(&a, Format::Envelope, vec![x]).await;
    write(&b, Format::Envelope, vec![y]).await;
    let summary: serde_json::Value = serde_json::from_str(&run(
        &["merge", "--json", "-o", out.to_str().unwrap()],
        &[&a, &b],
        0,
    ))
    .unwrap();
    let s = &summary["streams"][0];
    assert_eq!(s["messages"], 5, "{summary:#}");
    assert_eq!(
        (s["snapshots"].as_u64(), s["snapshots_left_out"].as_u64()),
        (Some(2), Some(1)),
        "{summary:#}"
    );
    let merged = run(&["cat"], &[&out], 0);
    let snaps: Vec<&str> = merged
        .lines()
        .filter(|l| l.contains("\"snapshot\":"))
        .collect();
    assert_eq!(snaps.len(), 2, "{merged}");
    // A's, while the output takes A's messages; B's second, after the switch to B.
    assert!(
        snaps[0].contains("https://a.venue.test/")
            && snaps[0].ends_with(&format!(r#""msg":{BODY}}}"#)),
        "{merged}"
    );
    assert!(
        snaps[1].contains("https://b.venue.test/")
            && snaps[1].contains(&format!(r#""ts":{},"#, T0 + 45 * MS)),
        "{merged}"
    );
    assert_eq!(
        run(&["cat", "--msg"], &[&out], 0),
        format!(
            "{{\"u\":1}}\n{{\"u\":2}}\n{BODY}\n{{\"u\":3}}\n{{\"u\":4}}\n{{\"lastUpdateId\":2}}\n{{\"u\":5}}\n"
        )
    );
    let report: serde_json::Value =
        serde_json::from_str(&run(&["verify", "--json"], &[&out], 0)).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["snapshots"], 2);
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_kept_in_bin() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Batch::new(0, 1);
    connected(&mut b, 0, 1);
    text(&mut b, 10, r#"{"u":1}"#);
    b.push_snapshot(T0 + 20 * MS, |_| {}, &[0x1f, 0x8b, 0xff, b'\n']);
    write(dir.path(), Format::Envelope, vec![b]).await;
    let lines = run(&["cat"], &[dir.path()], 0);
    let want = format!(
        r#"{{"ts":{},"stream":"book","conn":1,"snapshot":{{}},"bin":"H4v/Cg=="}}"#,
        T0 + 20 * MS
    );
    assert_eq!(lines.lines().nth(2), Some(want.as_str()), "{lines}");
    let out = wsrec()
        .args(["cat", "--msg"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"{\"u\":1}\n\x1f\x8b\xff\n\n");
}
