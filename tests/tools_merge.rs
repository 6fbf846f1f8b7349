//! `wsrec merge` on two recordings of the same feed: made by two in-process recorders from two
//! real WebSocket servers on 127.0.0.1:0 (tokio's paused time, the second recorder's clock
//! 30 ms ahead), each with its own disconnect windows; and on recordings written line by line
//! where a test needs exact control (exchange frames from the corpus, repeated messages, bad
//! input). The merge itself runs as the real binary.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use serde_json::Value;
use wsrec::read::discover;
use wsrec::tools::Progress;
use wsrec::tools::verify::{Report, VerifyOptions, verify};

/// 2026-11-24T11:00:10Z.
const T0: u64 = BASE_NS + 20_000_000_000;
const MS: u64 = 1_000_000;
const HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

fn merge(args: &[&Path], extra: &[&str]) -> Output {
    let mut c = wsrec();
    c.arg("merge");
    for a in args {
        c.arg(a);
    }
    c.args(extra).output().unwrap()
}

/// Runs a merge into `out` that must succeed, with `extra` flags; returns the JSON summary's
/// only stream.
fn merge_ok(inputs: &[&Path], out: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["-o", out.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = merge(inputs, &args);
    assert!(o.status.success(), "{o:?}");
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["streams"].as_array().unwrap().len(),
        1,
        "{summary:#}"
    );
    summary["streams"][0].clone()
}

fn run_verify(path: &Path) -> Report {
    verify(
        discover(&[path.to_owned()]).unwrap(),
        VerifyOptions::default(),
        &mut Progress::new(0, false),
    )
}

/// Every file under `dir` with its content, to show that a merge left it alone.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    all_files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// `wsrec cat --msg`: the messages byte for byte, one a line.
fn cat_msgs(dir: &Path) -> Vec<String> {
    let out = wsrec().arg("cat").arg("--msg").arg(dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn msg(n: usize) -> String {
    format!(r#"{{"n":{n},"p":"x"}}"#)
}

/// What the feed sends: message n, and a heartbeat after every 25th of 50.
fn feed(n: usize) -> Vec<String> {
    let mut v = vec![msg(n)];
    if n % 50 == 25 {
        v.push(HEARTBEAT.to_owned());
    }
    v
}

fn stream_with_backoff(url: &str, initial: Duration) -> wsrec::StreamConfig {
    let mut s = stream("feed", url);
    s.backoff_initial = initial;
    s.backoff_max = initial;
    s
}

/// Closes a connection from the server side and waits for the recorder's close.
async fn close(conn: &mut Option<ServerConn>) {
    let mut c = conn.take().unwrap();
    c.close(4001, "maintenance").await;
    let _ = c.recv_close().await;
}

#[tokio::test(start_paused = true)]
async fn merge_fills_each_sides_gaps_and_marks_the_shared_one() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let out_root = tempfile::tempdir().unwrap();
    let (a_path, b_path) = (a_dir.path().join("A"), b_dir.path().join("B"));
    let mut server_a = TestServer::start().await;
    let mut server_b = TestServer::start().await;
    // A reconnects after 2 to 4 s, B after 1 to 2 s: longer than the messages each misses.
    let rec_a = start(
        config(
            &a_path,
            vec![stream_with_backoff(&server_a.url(), Duration::from_secs(4))],
        ),
        BASE_NS,
    );
    let rec_b = start(
        config(
            &b_path,
            vec![stream_with_backoff(&server_b.url(), Duration::from_secs(2))],
        ),
        BASE_NS + 30 * MS,
    );
    let mut a = Some(server_a.accept().await);
    let mut b = Some(server_b.accept().await);
    let (mut sent_a, mut sent_b) = (0u64, 0u64);
    let mut expected = Vec::new();
    for n in 0..1000 {
        match n {
            100 => {
                rec_a.wait_messages(sent_a).await;
                close(&mut a).await;
            }
            200 => a = Some(server_a.accept().await),
            400 => {
                rec_b.wait_messages(sent_b).await;
                close(&mut b).await;
            }
            450 => b = Some(server_b.accept().await),
            700 => {
                rec_a.wait_messages(sent_a).await;
                rec_b.wait_messages(sent_b).await;
                close(&mut a).await;
                close(&mut b).await;
            }
            710 => {
                a = Some(server_a.accept().await);
                b = Some(server_b.accept().await);
            }
            _ => {}
        }
        if (700..710).contains(&n) {
            // Sent while neither recorder is connected: lost to both.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        for m in feed(n) {
            if let Some(c) = &mut a {
                c.send_text(&m).await;
                sent_a += 1;
            }
            if let Some(c) = &mut b {
                c.send_text(&m).await;
                sent_b += 1;
            }
            expected.push(m);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rec_a.wait_messages(sent_a).await;
    rec_b.wait_messages(sent_b).await;
    rec_a.stop().await;
    rec_b.stop().await;
    assert_eq!(
        expected.len(),
        1010,
        "990 numbered messages and 20 heartbeats"
    );
    assert_eq!(sent_a, 1010 - 102, "A misses 100..199 with 2 heartbeats");
    assert_eq!(sent_b, 1010 - 51, "B misses 400..449 with 1 heartbeat");
    let before_a = snapshot(&a_path);
    let before_b = snapshot(&b_path);

    // Each recording alone has its gaps.
    assert_eq!(run_verify(&a_path).streams[0].disconnects.len(), 2);
    assert_eq!(run_verify(&b_path).streams[0].disconnects.len(), 2);

    let c_path = out_root.path().join("C");
    let s = &merge_ok(&[&a_path, &b_path], &c_path, &[]);
    assert_eq!(s["stream"], "feed");
    assert_eq!(s["messages"], expected.len() as u64);
    // B supplies A's window (100 messages and 2 heartbeats); A everything else.
    assert_eq!(s["from_source"], serde_json::json!([sent_a, 102]));
    assert_eq!(s["duplicates"], sent_a + sent_b - expected.len() as u64);
    assert_eq!(s["source_gaps"], serde_json::json!([2, 2]));
    assert_eq!(s["gaps_filled"], 2, "{s:#}");
    assert_eq!(s["gaps_remaining"], 1, "{s:#}");
    assert_eq!(s["remaining"].as_array().unwrap().len(), 1);
    assert_eq!(s["remaining"][0]["reason"], "closed_by_server");
    // The 30 ms clock offset of B was measured.
    let off = s["offset_ms"][1].as_f64().unwrap();
    assert!((off - 30.0).abs() < 1.0, "{off}");

    // Every message exactly once, in order, byte for byte.
    assert_eq!(cat_msgs(&c_path), expected);

    // Inputs untouched.
    assert_eq!(snapshot(&a_path), before_a);
    assert_eq!(snapshot(&b_path), before_b);

    // The output is an ordinary recording: verify passes and shows the one shared gap.
    let report = run_verify(&c_path);
    assert!(report.ok, "{report:#?}");
    assert!(report.manifests_checked >= 1, "{report:#?}");
    let st = &report.streams[0];
    assert_eq!(st.messages, expected.len() as u64);
    assert_eq!(st.seq_first, Some(0));
    assert_eq!(st.seq_last, Some(expected.len() as u64 - 1));
    assert_eq!(st.disconnects.len(), 1, "{st:#?}");
    let w = &st.disconnects[0];
    assert_eq!(w.reason, "closed_by_server");
    let gap = &s["remaining"][0];
    assert_eq!(Some(w.start_ns), gap["from_ns"].as_u64());
    assert_eq!(w.end_ns, gap["to_ns"].as_u64());
    let status = wsrec().arg("verify").arg(&c_path).output().unwrap().status;
    assert!(status.success());

    // The output's files form a chain: a copy without its first hour is missing a file.
    let cut = out_root.path().join("cut");
    let data: Vec<PathBuf> = files(&c_path);
    assert!(data.len() >= 2, "the merge crosses an hour: {data:?}");
    for p in &data {
        let to = cut.join(p.strip_prefix(&c_path).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        if p != &data[0] {
            std::fs::copy(p, &to).unwrap();
            let m = wsrec::store::manifest::path_for(p);
            std::fs::copy(&m, wsrec::store::manifest::path_for(&to)).unwrap();
        }
    }
    let report = run_verify(&cut);
    assert!(!report.ok, "{report:#?}");
    let first = data[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report
            .issues
            .iter()
            .any(|i| serde_json::to_value(i.kind).unwrap() == "missing_file"
                && i.detail.contains(&first)),
        "{report:#?}"
    );

    // Provenance: every message's output connection names its source.
    let records = records(&c_path);
    let mut source_of_conn = BTreeMap::new();
    for r in events(&records, "connected") {
        source_of_conn.insert(r["conn"].as_u64().unwrap(), r["source"].as_str().unwrap());
    }
    let a_label = a_path.to_str().unwrap();
    let b_label = b_path.to_str().unwrap();
    let mut last_n_before_gap = None;
    for (i, r) in records.iter().enumerate() {
        let Some(n) = r["msg"]["n"].as_u64() else {
            if r["event"] == "disconnected" && r["reason"] == "closed_by_server" {
                last_n_before_gap = records[..i]
                    .iter()
                    .rev()
                    .find_map(|p| p["msg"]["n"].as_u64());
                // The gap's end: the next line is a connection, the next message is 710.
                assert_eq!(records[i + 1]["event"], "connected");
                let next = records[i..].iter().find_map(|p| p["msg"]["n"].as_u64());
                assert_eq!(next, Some(710));
            }
            continue;
        };
        let src = source_of_conn[&r["conn"].as_u64().unwrap()];
        let want = if (100..200).contains(&n) {
            b_label
        } else {
            a_label
        };
        assert_eq!(src, want, "message {n}");
    }
    assert_eq!(last_n_before_gap, Some(699));
    // Switches without a gap hand over like a planned reconnect.
    let replaced = events(&records, "disconnected")
        .into_iter()
        .filter(|r| r["reason"] == "replaced")
        .count();
    // A -> B at 100, B -> A at 200, and after the shared gap: B reconnected first, so the
    // output's connection resumes from B, and A takes over with its first message.
    assert_eq!(replaced, 3);
    assert_eq!(s["switches"], 3);
    // Hosts come from the sources' own `connected` events.
    assert!(
        events(&records, "connected")
            .iter()
            .all(|r| r["host"].is_string())
    );

    // Refused: a non-empty output directory (unless --force), and nothing changes.
    let before_c = snapshot(&c_path);
    let again = merge(&[&a_path, &b_path], &["-o", c_path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(snapshot(&c_path), before_c);
    let forced = merge(
        &[&a_path, &b_path],
        &["-o", c_path.to_str().unwrap(), "--force"],
    );
    assert!(forced.status.success(), "{forced:?}");
    assert_eq!(
        snapshot(&c_path),
        before_c,
        "the same merge gives the same files"
    );
    let text = String::from_utf8(forced.stdout).unwrap();
    assert!(text.contains("stream feed: "), "{text}");
    assert!(text.contains("2 filled, 1 remaining"), "{text}");
    assert!(text.contains("no source connected: "), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Recordings written line by line, as the writer writes them.

struct Rec {
    stream: String,
    lines: Vec<String>,
    seq: u64,
}

impl Rec {
    fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            lines: Vec::new(),
            seq: 0,
        }
    }

    fn event(&mut self, ts: u64, conn: u64, body: &str) {
        self.lines.push(format!(
            r#"{{"ts":{ts},"stream":"{}","conn":{conn},"event":{body}}}"#,
            self.stream
        ));
    }

    fn connected(&mut self, ts: u64, conn: u64) {
        self.event(
            ts,
            conn,
            r#""connected","url":"wss://x/ws","host":"h","pid":7"#,
        );
    }

    fn disconnected(&mut self, ts: u64, conn: u64, reason: &str) {
        self.event(ts, conn, &format!(r#""disconnected","reason":"{reason}""#));
    }

    fn msg(&mut self, ts: u64, conn: u64, m: &str) {
        self.lines.push(format!(
            r#"{{"ts":{ts},"stream":"{}","conn":{conn},"seq":{},"msg":{m}}}"#,
            self.stream, self.seq
        ));
        self.seq += 1;
    }

    fn write(&self, dir: &Path) {
        let d = dir.join(&self.stream).join("2026-11-24");
        std::fs::create_dir_all(&d).unwrap();
        let mut text = self.lines.join("\n");
        text.push('\n');
        std::fs::write(
            d.join(format!("{}-20261124T110000Z.jsonl", self.stream)),
            text,
        )
        .unwrap();
    }
}

#[test]
fn exchange_sequence_numbers_find_copies_whose_bytes_differ() {
    // Real Bybit order book frames. A is disconnected for frames 150..220; B has every frame,
    // but as another rendering of the same JSON (a space after the first brace), so only the
    // sequence number (`u` per topic) says they are the same messages.
    let frames: Vec<String> = corpus("bybit-linear_orderbook.jsonl")
        .into_iter()
        .take(400)
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let (a_path, b_path) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = Rec::new("bybit");
    let mut b = Rec::new("bybit");
    a.connected(T0, 1);
    b.connected(T0 + 3 * MS, 1);
    for (k, f) in frames.iter().enumerate() {
        let ts = T0 + 10 * MS + k as u64 * 10 * MS;
        if k == 150 {
            a.disconnected(ts - MS, 1, "error");
        }
        if k == 220 {
            a.connected(ts - MS, 2);
        }
        if !(150..220).contains(&k) {
            a.msg(ts, if k < 150 { 1 } else { 2 }, f);
        }
        b.msg(ts + 4 * MS, 1, &f.replacen('{', "{ ", 1));
    }
    let end = T0 + 5_000 * MS;
    a.disconnected(end, 2, "shutdown");
    b.disconnected(end, 1, "shutdown");
    a.write(&a_path);
    b.write(&b_path);

    let c_path = tmp.path().join("c");
    let s = &merge_ok(&[&a_path, &b_path], &c_path, &[]);
    assert_eq!(s["from_source"], serde_json::json!([330, 70]), "{s:#}");
    assert_eq!(s["duplicates"], 330);
    assert_eq!(s["gaps_filled"], 1);
    assert_eq!(s["gaps_remaining"], 0);
    let got = cat_msgs(&c_path);
    let want: Vec<String> = frames
        .iter()
        .enumerate()
        .map(|(k, f)| {
            if (150..220).contains(&k) {
                f.replacen('{', "{ ", 1)
            } else {
                f.clone()
            }
        })
        .collect();
    assert_eq!(
        got, want,
        "A's bytes where A has the frame, B's in A's window"
    );
    // Bybit's own numbering runs on without a break or a repeat.
    let report = run_verify(&c_path);
    assert!(report.ok, "{report:#?}");
    assert!(report.streams[0].venue_checked >= 400);
    assert!(report.streams[0].disconnects.is_empty());

    // By bytes alone the two renderings are different messages: both are kept.
    let d_path = tmp.path().join("d");
    let summary = merge_ok(&[&a_path, &b_path], &d_path, &["--no-venue"]);
    assert_eq!(summary["duplicates"], 0);
    assert_eq!(cat_msgs(&d_path).len(), 730);
}

#[test]
fn identical_messages_of_one_source_are_never_collapsed() {
    // Heartbeats are identical bytes: two in a row in each source, then one each, then one that
    // only B has (A dropped it and says so). Copies match one to one across the sources.
    let tmp = tempfile::tempdir().unwrap();
    let (a_path, b_path) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = Rec::new("hb");
    let mut b = Rec::new("hb");
    a.connected(T0, 1);
    b.connected(T0, 1);
    for (ts, m) in [
        (1000, HEARTBEAT),
        (1000, HEARTBEAT),
        (1100, r#"{"n":1}"#),
        (1500, HEARTBEAT),
        (2000, HEARTBEAT),
    ] {
        a.msg(T0 + ts * MS, 1, m);
        b.msg(T0 + (ts + 2) * MS, 1, m);
    }
    a.event(
        T0 + 2001 * MS,
        1,
        r#""dropped","count":1,"policy":"drop_newest""#,
    );
    b.msg(T0 + 2003 * MS, 1, HEARTBEAT);
    a.msg(T0 + 2500 * MS, 1, r#"{"n":2}"#);
    b.msg(T0 + 2502 * MS, 1, r#"{"n":2}"#);
    a.disconnected(T0 + 3000 * MS, 1, "shutdown");
    b.disconnected(T0 + 3000 * MS, 1, "shutdown");
    a.write(&a_path);
    b.write(&b_path);

    let c_path = tmp.path().join("c");
    let s = &merge_ok(&[&a_path, &b_path], &c_path, &[]);
    assert_eq!(s["from_source"], serde_json::json!([6, 1]), "{s:#}");
    assert_eq!(s["duplicates"], 6);
    assert_eq!(s["gaps_filled"], 1, "A's `dropped` is covered by B");
    assert_eq!(s["gaps_remaining"], 0);
    assert_eq!(
        cat_msgs(&c_path),
        [
            HEARTBEAT,
            HEARTBEAT,
            r#"{"n":1}"#,
            HEARTBEAT,
            HEARTBEAT,
            HEARTBEAT,
            r#"{"n":2}"#
        ]
    );
    let merged = records(&c_path);
    assert!(events(&merged, "dropped").is_empty());
    assert!(run_verify(&c_path).ok);

    // Merging a recording with itself under another name keeps every repeat once.
    let a2 = tmp.path().join("a2");
    a.write(&a2);
    let d_path = tmp.path().join("d");
    let out = merge(&[&a_path, &a2], &["-o", d_path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cat_msgs(&d_path).len(), 6);
    // The mark is in both: not covered, so it is kept in the output.
    assert_eq!(events(&records(&d_path), "dropped").len(), 2);

    // Three inputs: B covers both marks; every message once.
    let e_path = tmp.path().join("e");
    let s = &merge_ok(&[&a_path, &b_path, &a2], &e_path, &[]);
    assert_eq!(s["from_source"], serde_json::json!([6, 1, 0]), "{s:#}");
    assert_eq!(s["duplicates"], 12);
    assert_eq!(s["gaps_filled"], 2);
    assert_eq!(cat_msgs(&e_path).len(), 7);
    assert!(events(&records(&e_path), "dropped").is_empty());
}

#[test]
fn bad_input_exits_2_naming_the_problem_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a_path = tmp.path().join("a");
    let mut a = Rec::new("feed");
    a.connected(T0, 1);
    a.msg(T0 + MS, 1, r#"{"n":1}"#);
    a.write(&a_path);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out_dir = tmp.path().join("out");
    let o = out_dir.to_str().unwrap();
    let missing = tmp.path().join("missing");
    let inside = a_path.join("sub");
    let cases: [(Vec<&Path>, Vec<&str>, &str); 5] = [
        (
            vec![&a_path, &missing],
            vec!["-o", o],
            "missing: no such file or directory",
        ),
        (vec![&a_path, &empty], vec!["-o", o], "no recording files"),
        (
            vec![&a_path, &a_path],
            vec!["-o", o],
            "are the same recording",
        ),
        (
            vec![&a_path, &empty],
            vec!["-o", inside.to_str().unwrap()],
            "overlaps the input",
        ),
        (vec![&a_path], vec!["-o", o], "PATH"),
    ];
    for (inputs, extra, want) in cases {
        let out = merge(&inputs, &extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{inputs:?}: {err}");
        assert!(err.contains(want), "{inputs:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out_dir.exists(), "{inputs:?}");
    }
    assert!(!inside.exists());

    // A merge that fails part way (the second stream's name cannot be a path) leaves no file.
    let b_path = tmp.path().join("b");
    let mut b = Rec::new("feed");
    b.connected(T0, 1);
    b.msg(T0 + 2 * MS, 1, r#"{"n":1}"#);
    b.write(&b_path);
    let mut bad = Rec::new("zz/..");
    bad.connected(T0, 1);
    bad.msg(T0 + 3 * MS, 1, r#"{"n":1}"#);
    let d = b_path.join("other");
    std::fs::create_dir_all(&d).unwrap();
    let mut text = bad.lines.join("\n");
    text.push('\n');
    std::fs::write(d.join("weird.jsonl"), text).unwrap();
    let out = merge(&[&a_path, &b_path], &["-o", o]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used as a file name"), "{err}");
    assert!(!out_dir.exists(), "a failed merge removes what it staged");
}

/// Issue 21: the output's `connected` events carry the tags of the source connection their
/// messages come from, as they carry its host.
#[test]
fn merged_connections_carry_their_sources_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_path, b_path) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = Rec::new("feed");
    let mut b = Rec::new("feed");
    let connected = |region: &str| {
        format!(
            r#""connected","url":"wss://x/ws","host":"h-{region}","pid":7,"tags":{{"region":"{region}","role":"r"}}"#
        )
    };
    a.event(T0, 1, &connected("eu"));
    b.event(T0 + MS, 1, &connected("us"));
    // A has 0..10 and 20..30; B has everything: B fills A's window.
    for n in 0..30 {
        let ts = T0 + 10 * MS + n as u64 * 10 * MS;
        if n == 10 {
            a.disconnected(ts - MS, 1, "error");
        }
        if n == 20 {
            a.event(ts - MS, 2, &connected("eu"));
        }
        if !(10..20).contains(&n) {
            a.msg(ts, if n < 10 { 1 } else { 2 }, &msg(n));
        }
        b.msg(ts + MS, 1, &msg(n));
    }
    let end = T0 + 1_000 * MS;
    a.disconnected(end, 2, "shutdown");
    b.disconnected(end, 1, "shutdown");
    a.write(&a_path);
    b.write(&b_path);

    let c_path = tmp.path().join("c");
    let s = merge_ok(&[&a_path, &b_path], &c_path, &[]);
    assert_eq!(s["from_source"], serde_json::json!([20, 10]), "{s:#}");
    let records = records(&c_path);
    let regions: Vec<(&str, &str)> = events(&records, "connected")
        .iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap(),
                r["tags"]["region"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(regions, [("h-eu", "eu"), ("h-us", "us"), ("h-eu", "eu")]);
    assert!(run_verify(&c_path).ok);
}

/// What a merge killed outright (`kill -9`) staged in its output is removed by the next merge
/// into it, which then needs no `--force`: nothing of a finished merge was there.
#[test]
fn the_next_merge_removes_what_a_killed_one_staged() {
    let tmp = tempfile::tempdir().unwrap();
    let (a_path, b_path, c_path) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    for path in [&a_path, &b_path] {
        let mut r = Rec::new("s");
        r.connected(T0, 1);
        r.msg(T0 + MS, 1, &msg(0));
        r.disconnected(T0 + 2 * MS, 1, "shutdown");
        r.write(path);
    }
    let gone = ended_process();
    let stale = c_path.join(format!(".wsrec-merge-{gone}"));
    std::fs::create_dir_all(stale.join("s")).unwrap();
    std::fs::write(stale.join("s/half.jsonl"), msg(0)).unwrap();
    let o = merge(
        &[&a_path, &b_path],
        &["-o", c_path.to_str().unwrap(), "--tolerance", "1s"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("process {gone}")), "{err}");
    assert!(!stale.exists());
    assert_eq!(cat_msgs(&c_path), vec![msg(0)]);
}
