//! The tools around a recording (`cat`, `verify`, `stats`, `demo`) on real recordings: made by
//! the in-process recorder from a real WebSocket server on 127.0.0.1:0 (tokio's paused time),
//! then damaged on purpose where a test needs a defect. The binary is run for what only the
//! binary does: exit codes, broken pipes, the demo.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use wsrec::read::discover;
use wsrec::tools::Progress;
use wsrec::tools::cat::{CatOptions, CatSummary, cat};
use wsrec::tools::verify::{IssueKind, Report, Severity, VerifyOptions, verify};

/// 2026-11-24T11:00:10Z: clear of the hour boundary, so a short recording is one file.
const T0: u64 = BASE_NS + 20_000_000_000;

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

fn run_cat(paths: &[PathBuf], opts: &CatOptions) -> (Vec<u8>, String, CatSummary) {
    let files = discover(paths).unwrap();
    let mut out = Vec::new();
    let mut warn = Vec::new();
    let s = cat(
        files,
        opts,
        &mut out,
        &mut warn,
        &mut Progress::new(0, false),
    )
    .unwrap();
    (out, String::from_utf8(warn).unwrap(), s)
}

fn run_verify(paths: &[PathBuf]) -> Report {
    verify(
        discover(paths).unwrap(),
        VerifyOptions::default(),
        &mut Progress::new(0, false),
    )
}

fn issues_of(r: &Report, kind: IssueKind) -> Vec<&wsrec::tools::verify::Issue> {
    r.issues.iter().filter(|i| i.kind == kind).collect()
}

/// Records `msgs` (text) and `bins` (binary, after the texts) on one stream named `feed`,
/// stops cleanly, and returns the recording's data file.
async fn record(dir: &Path, msgs: &[String], bins: &[Vec<u8>]) -> PathBuf {
    let mut server = TestServer::start().await;
    let rec = start(config(dir, vec![stream("feed", &server.url())]), T0);
    let mut conn = server.accept().await;
    conn.send_all(msgs.iter().cloned()).await;
    for b in bins {
        conn.send_binary(b).await;
    }
    rec.wait_messages((msgs.len() + bins.len()) as u64).await;
    rec.stop().await;
    let files = files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// The lines of a plain file.
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `lines` (each with a newline) to `dir/name`.
fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(start_paused = true)]
async fn record_then_cat_gives_the_messages_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // Spelling that a JSON round trip would change: spaces, number forms, key order, escapes.
    let msgs: Vec<String> = [
        r#"{"price":"1.10", "qty" : 1e3,"list":[1,2.50],"b":1,"a":2}"#,
        r#"[1,"a",null,-0.0,1E+2]"#,
        r#"{"s":"\u00e9\n\"x\""}"#,
        "not json at all",
        r#""just a string""#,
        "",
    ]
    .map(str::to_owned)
    .into_iter()
    .chain(numbered(0, 500))
    .collect();
    let bins = vec![vec![0u8, 1, 2, 255, b'\n']];
    let file = record(dir.path(), &msgs, &bins).await;

    let opts = CatOptions {
        msg_only: true,
        ..CatOptions::default()
    };
    let (out, warn, s) = run_cat(&[dir.path().to_owned()], &opts);
    let mut want = Vec::new();
    for m in &msgs {
        want.extend_from_slice(m.as_bytes());
        want.push(b'\n');
    }
    want.extend_from_slice(&bins[0]);
    want.push(b'\n');
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(out, want);
    assert_eq!(warn, "");
    assert_eq!(s.printed, 507);

    // Without --msg: the records, exactly the file.
    let (out, _, _) = run_cat(std::slice::from_ref(&file), &CatOptions::default());
    assert_eq!(out, std::fs::read(&file).unwrap());

    // The same file compressed with zstd and gzip, as the compressor leaves it: same output.
    let zdir = tempfile::tempdir().unwrap();
    let text = std::fs::read(&file).unwrap();
    std::fs::write(
        zdir.path().join("feed-a.jsonl.zst"),
        zstd::encode_all(&text[..], 3).unwrap(),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).unwrap();
    std::fs::write(zdir.path().join("feed-b.jsonl.gz"), gz.finish().unwrap()).unwrap();
    let (out, warn, _) = run_cat(&[zdir.path().to_owned()], &opts);
    assert_eq!(out, [want.clone(), want].concat());
    assert_eq!(warn, "");
}

#[tokio::test(start_paused = true)]
async fn cat_merges_streams_by_receive_time_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut sa = TestServer::start().await;
    let mut sb = TestServer::start().await;
    let rec = start(
        config(
            dir.path(),
            vec![stream("a", &sa.url()), stream("b", &sb.url())],
        ),
        T0,
    );
    let mut ca = sa.accept().await;
    let mut cb = sb.accept().await;
    for i in 0..10u64 {
        ca.send_text(&format!(r#"{{"a":{i}}}"#)).await;
        rec.wait_until(|s| s.streams[0].messages.load(Relaxed) > i)
            .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        cb.send_text(&format!(r#"{{"b":{i}}}"#)).await;
        rec.wait_until(|s| s.streams[1].messages.load(Relaxed) > i)
            .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rec.stop().await;
    let all = [dir.path().to_owned()];

    let merged = CatOptions {
        msg_only: true,
        merge: true,
        ..CatOptions::default()
    };
    let (out, _, _) = run_cat(&all, &merged);
    let want: String = (0..10)
        .map(|i| format!("{{\"a\":{i}}}\n{{\"b\":{i}}}\n"))
        .collect();
    assert_eq!(String::from_utf8(out).unwrap(), want);

    // File by file: all of a, then all of b.
    let (out, _, _) = run_cat(
        &all,
        &CatOptions {
            msg_only: true,
            ..CatOptions::default()
        },
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("{\"a\":0}\n{\"a\":1}\n"), "{text}");

    // Merged records (events too) come in receive-time order.
    let (out, _, _) = run_cat(
        &all,
        &CatOptions {
            merge: true,
            ..CatOptions::default()
        },
    );
    let ts: Vec<u64> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| wsrec::read::quick_ts(l.as_bytes()).unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    assert_eq!(
        ts.len(),
        20 + 4,
        "10 + 10 messages, connected and disconnected each"
    );

    // --stream and --from/--to (half open), by the receive times of the records.
    let b_times: Vec<u64> = {
        let (out, _, _) = run_cat(
            &all,
            &CatOptions {
                filter: wsrec::tools::Filter {
                    streams: vec!["b".into()],
                    ..Default::default()
                },
                ..CatOptions::default()
            },
        );
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"seq\":"))
            .map(|l| wsrec::read::quick_ts(l.as_bytes()).unwrap())
            .collect()
    };
    assert_eq!(b_times.len(), 10);
    let opts = CatOptions {
        msg_only: true,
        merge: true,
        filter: wsrec::tools::Filter {
            streams: vec!["b".into()],
            from: Some(b_times[3]),
            to: Some(b_times[6]),
        },
        no_snapshots: false,
    };
    let (out, _, _) = run_cat(&all, &opts);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"b\":3}\n{\"b\":4}\n{\"b\":5}\n"
    );
}

#[tokio::test(start_paused = true)]
async fn cat_reads_a_file_while_it_is_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(config(dir.path(), vec![stream("feed", &server.url())]), T0);
    let mut conn = server.accept().await;
    let sent = numbered(0, 300);
    conn.send_all(sent.clone()).await;
    rec.wait_messages(300).await;
    // Past the flush interval, the writer hands everything to the disk worker.
    let open = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let open: Vec<PathBuf> = files(dir.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".jsonl.open"))
            .collect();
        if let [p] = open.as_slice()
            && lines(p).len() >= 301
        {
            break p.clone();
        }
    };
    // The recorder is still running and the file still open.
    let opts = CatOptions {
        msg_only: true,
        ..CatOptions::default()
    };
    let (out, warn, _) = run_cat(std::slice::from_ref(&open), &opts);
    assert_eq!(String::from_utf8(out).unwrap(), sent.join("\n") + "\n");
    assert_eq!(warn, "");
    let report = run_verify(std::slice::from_ref(&open));
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.open_files, 1);

    // The writer caught mid-line: the torn tail of an open file is skipped quietly, and verify
    // only warns.
    let copy = tempfile::tempdir().unwrap();
    let mut text = std::fs::read(&open).unwrap();
    text.extend_from_slice(
        br#"{"ts":1795518010000000000,"stream":"feed","conn":1,"seq":300,"msg":{"n":3"#,
    );
    let torn_open = copy.path().join("feed-x.jsonl.open");
    std::fs::write(&torn_open, &text).unwrap();
    let (out, warn, _) = run_cat(std::slice::from_ref(&torn_open), &opts);
    assert_eq!(String::from_utf8(out).unwrap(), sent.join("\n") + "\n");
    assert_eq!(warn, "");
    let report = run_verify(std::slice::from_ref(&torn_open));
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.warnings, 1);
    assert_eq!(issues_of(&report, IssueKind::TornLine)[0].line, Some(302));

    // The same bytes in a closed file: the file was cut short; a warning, then a problem.
    let torn_closed = copy.path().join("feed-y.jsonl");
    std::fs::write(&torn_closed, &text).unwrap();
    let (out, warn, s) = run_cat(std::slice::from_ref(&torn_closed), &opts);
    assert_eq!(String::from_utf8(out).unwrap(), sent.join("\n") + "\n");
    assert!(
        warn.contains("feed-y.jsonl:302: the last line has no newline"),
        "{warn}"
    );
    assert_eq!(s.torn, 1);
    let report = run_verify(std::slice::from_ref(&torn_closed));
    assert!(!report.ok);
    let torn = issues_of(&report, IssueKind::TornLine);
    assert_eq!(torn.len(), 1);
    assert_eq!(torn[0].severity, Severity::Problem);

    conn.send_text(r#"{"late":1}"#).await;
    rec.wait_messages(301).await;
    rec.stop().await;
    assert_eq!(
        run_cat(&[dir.path().to_owned()], &opts).0,
        (sent.join("\n") + "\n{\"late\":1}\n").into_bytes()
    );
}

#[tokio::test(start_paused = true)]
async fn verify_passes_a_clean_recording_and_finds_injected_defects() {
    let dir = tempfile::tempdir().unwrap();
    let file = record(dir.path(), &numbered(0, 100), &[]).await;
    let report = run_verify(&[dir.path().to_owned()]);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.messages, 100);
    assert_eq!(report.manifests_checked, 1, "the writer's manifest matches");
    let s = &report.streams[0];
    assert_eq!((s.seq_first, s.seq_last, s.runs), (Some(0), Some(99), 1));
    assert!(s.disconnects.is_empty());

    let good = lines(&file);
    // connected, then messages seq 0.. from line 2; disconnected last.
    assert!(good[0].contains("\"event\":\"connected\""));
    let defect = |name: &str, lines: Vec<String>| -> (PathBuf, Report) {
        let d = dir.path().join(format!("defect-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        let p = write_lines(&d, &format!("feed-{name}.jsonl"), &lines);
        let r = run_verify(std::slice::from_ref(&p));
        assert!(!r.ok, "{name}: {r:#?}");
        (p, r)
    };

    // A removed line: seq 10 is missing.
    let mut l = good.clone();
    l.remove(11);
    let (_, r) = defect("gap", l);
    let gaps = issues_of(&r, IssueKind::SeqGap);
    assert_eq!(gaps.len(), 1, "{r:#?}");
    assert!(gaps[0].detail.contains("seq 10 is missing"), "{gaps:?}");
    assert_eq!(gaps[0].line, Some(12), "noticed at seq 11, line 12");
    assert_eq!(r.problems, 1);

    // A duplicated line.
    let mut l = good.clone();
    l.insert(30, l[29].clone());
    let (_, r) = defect("dup", l);
    let dups = issues_of(&r, IssueKind::SeqDuplicate);
    assert_eq!(dups.len(), 1, "{r:#?}");
    assert_eq!(dups[0].line, Some(31));
    assert_eq!(r.problems, 1);

    // A garbled line in the middle: reported with its number (and its seq is missing).
    let mut l = good.clone();
    l[50] = l[50][..40].to_owned();
    let (p, r) = defect("garbled", l);
    let bad = issues_of(&r, IssueKind::InvalidLine);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, Some(51));
    assert_eq!(bad[0].file.as_deref(), Some(&*p.to_string_lossy()));
    assert!(bad[0].detail.starts_with("not a record: EOF"), "{bad:?}");
    assert_eq!(issues_of(&r, IssueKind::SeqGap).len(), 1);

    // A torn last line in a closed file.
    let mut l = good.clone();
    let last = l.pop().unwrap();
    l.push(last[..last.len() / 2].to_owned());
    let d = dir.path().join("defect-torn");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("feed-torn.jsonl");
    std::fs::write(&p, l.join("\n")).unwrap();
    let r = run_verify(std::slice::from_ref(&p));
    let torn = issues_of(&r, IssueKind::TornLine);
    assert_eq!(torn.len(), 1, "{r:#?}");
    assert_eq!(torn[0].severity, Severity::Problem);
    assert_eq!(torn[0].line, Some(good.len() as u64));

    // Messages dropped under drop_newest: the `dropped` event explains its gap.
    let mut l = good.clone();
    let ts = wsrec::read::quick_ts(l[20].as_bytes()).unwrap();
    l.drain(20..23);
    l.insert(
        20,
        format!(
            r#"{{"ts":{ts},"stream":"feed","conn":1,"event":"dropped","count":3,"policy":"drop_newest"}}"#
        ),
    );
    let (_, r) = defect("dropped", l);
    assert_eq!(issues_of(&r, IssueKind::Dropped).len(), 1, "{r:#?}");
    assert!(issues_of(&r, IssueKind::SeqGap).is_empty(), "{r:#?}");
    assert_eq!(r.streams[0].dropped, 3);
    assert_eq!(r.streams[0].seq_missing, 3);

    // Lines the writer could not write (disk below disk_stop): marked, so no unexplained gap.
    let mut l = good.clone();
    let ts = wsrec::read::quick_ts(l[60].as_bytes()).unwrap();
    l.drain(60..64);
    l.insert(
        60,
        format!(
            r#"{{"ts":{ts},"stream":"feed","conn":1,"event":"disk_full_gap","lost":4,"from_ts":{ts},"to_ts":{ts}}}"#
        ),
    );
    let (_, r) = defect("diskfull", l);
    let nw = issues_of(&r, IssueKind::NotWritten);
    assert_eq!(nw.len(), 1, "{r:#?}");
    assert!(
        nw[0].detail.starts_with("4 message(s) not written"),
        "{nw:?}"
    );
    assert_eq!(r.problems, 1, "{r:#?}");
    assert_eq!(r.streams[0].not_written, 4);

    // A file changed after it was closed: one digit of one message, still valid JSON.
    let d = dir.path().join("defect-manifest");
    std::fs::create_dir_all(&d).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let mut l = good.clone();
    l[40] = l[40].replace("\"n\":39", "\"n\":93");
    assert_ne!(l[40], good[40]);
    let p = write_lines(&d, &name, &l);
    std::fs::copy(manifest_path(&file), manifest_path(&d.join(&name))).unwrap();
    let r = run_verify(std::slice::from_ref(&p));
    let m = issues_of(&r, IssueKind::Manifest);
    assert_eq!(m.len(), 1, "{r:#?}");
    assert!(m[0].detail.contains("XXH3-64"), "{m:?}");
    assert_eq!(r.problems, 1);

    // A recorder killed mid-run (no `disconnected`), then started again.
    let mut l: Vec<String> = good[..good.len() - 1].to_vec();
    let restart_ts =
        wsrec::read::quick_ts(good.last().unwrap().as_bytes()).unwrap() + 5_000_000_000;
    // As `recover` marks the file the killed run left open, at the next start.
    l.push(format!(
        r#"{{"ts":{},"stream":"feed","conn":0,"event":"recovered","file":"feed-x.jsonl","cut_bytes":17,"lines":{}}}"#,
        restart_ts - 1000,
        good.len() - 1
    ));
    l.push(format!(
        r#"{{"ts":{restart_ts},"stream":"feed","conn":1,"event":"connected","url":"ws://x/","host":"h","pid":2}}"#
    ));
    l.push(format!(
        r#"{{"ts":{},"stream":"feed","conn":1,"seq":0,"msg":{{"again":1}}}}"#,
        restart_ts + 1
    ));
    let (_, r) = defect("killed", l);
    // The killed run is reported once: by the repair's mark, not again when the next run starts.
    assert_eq!(issues_of(&r, IssueKind::UncleanStop).len(), 0, "{r:#?}");
    assert_eq!(r.problems, 1, "seq restarts with the run: no duplicate");
    let rec = issues_of(&r, IssueKind::Recovered);
    assert_eq!(rec[0].severity, Severity::Problem);
    assert!(rec[0].detail.contains("killed or crashed"), "{rec:?}");
    assert!(rec[0].detail.contains("17 bytes"), "{rec:?}");
    assert_eq!(r.streams[0].runs, 2);
    assert_eq!(r.streams[0].unclean_stops, 1);
    let w = &r.streams[0].disconnects;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].duration_ns.unwrap() >= 5_000_000_000);
}

#[tokio::test(start_paused = true)]
async fn verify_reports_disconnect_windows_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(config(dir.path(), vec![stream("feed", &server.url())]), T0);
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 5)).await;
    rec.wait_messages(5).await;
    conn.close(4001, "maintenance").await;
    let _ = conn.recv_close().await;
    let mut again = server.accept().await;
    again.send_all(numbered(5, 5)).await;
    rec.wait_messages(10).await;
    rec.stop().await;

    let report = run_verify(&[dir.path().to_owned()]);
    assert!(report.ok, "{report:#?}");
    let s = &report.streams[0];
    assert_eq!(s.connections, 2);
    assert_eq!(s.disconnects.len(), 1, "{s:#?}");
    let w = &s.disconnects[0];
    assert_eq!(w.reason, "closed_by_server");
    // The reconnect waits for the backoff (100 ms initial, with jitter).
    let d = w.duration_ns.unwrap();
    assert!((40_000_000..=400_000_000).contains(&d), "{d}");
    let text = wsrec::tools::verify::render(&report);
    assert!(text.contains("1 disconnect window(s)"), "{text}");
    assert!(text.contains("(closed_by_server) at "), "{text}");
    assert!(text.ends_with("OK: no problems found.\n"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn verify_finds_a_gap_in_the_exchanges_own_sequence() {
    // Real Binance USDⓈ-M depth frames through the recorder: continuous `pu` -> `u`.
    let frames = corpus("binance-usdm_depthUpdate.jsonl");
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), &frames, &[]).await;
    let report = run_verify(&[dir.path().to_owned()]);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.streams[0].venue_checked, 764);

    // The exchange (not the recorder) loses one frame: the recording is complete, its seq has
    // no gap, and verify still sees the break in Binance's numbering.
    let mut lost = frames.clone();
    let gone = lost.remove(100);
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), &lost, &[]).await;
    let report = run_verify(&[dir.path().to_owned()]);
    assert_eq!(report.problems, 1, "{report:#?}");
    let v = issues_of(&report, IssueKind::VenueGap);
    assert_eq!(v.len(), 1);
    let symbol_stream = gone.split('"').nth(3).unwrap();
    assert!(
        v[0].detail
            .starts_with(&format!("Binance {symbol_stream} `pu` skips")),
        "{v:?}"
    );
    assert_eq!(v[0].stream.as_deref(), Some("feed"));

    // --no-venue turns the check off.
    let r = verify(
        discover(&[dir.path().to_owned()]).unwrap(),
        VerifyOptions {
            venue: false,
            books: false,
        },
        &mut Progress::new(0, false),
    );
    assert!(r.ok);
}

#[tokio::test(start_paused = true)]
async fn verify_does_not_check_binance_partial_depth_snapshots() {
    // The real USDⓈ-M diff frames as a depth20@500ms partial stream: every fifth event is
    // pushed, so each frame's `pu` names an event this stream never carried. Partial depth is a
    // snapshot stream; Binance promises `pu` linking for diff streams only.
    let frames: Vec<String> = corpus("binance-usdm_depthUpdate.jsonl")
        .into_iter()
        .step_by(5)
        .map(|m| m.replace("@depth@100ms", "@depth20@500ms"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), &frames, &[]).await;
    let report = run_verify(&[dir.path().to_owned()]);
    assert!(report.ok, "{report:#?}");
    assert!(issues_of(&report, IssueKind::VenueGap).is_empty());
    assert_eq!(report.streams[0].venue_checked, 0);
}

#[tokio::test(start_paused = true)]
async fn verify_follows_bitfinex_sequence_numbers() {
    // What Bitfinex sends with the SEQ_ALL flag wsrec sets: one counter over every channel.
    let frames: Vec<String> = (1..=20u64)
        .map(|n| match n % 4 {
            0 => format!("[18,\"hb\",{n}]"),
            1 => format!("[17,[65114,{n},0.5],{n}]"),
            2 => format!("[17,\"cs\",-1285917431,{n}]"),
            _ => format!("[18,\"te\",[{n},1786310819680,0.004,65114],{n}]"),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), &frames, &[]).await;
    let report = run_verify(&[dir.path().to_owned()]);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.streams[0].venue_checked, 20);

    let mut lost = frames.clone();
    lost.remove(9);
    let dir = tempfile::tempdir().unwrap();
    record(dir.path(), &lost, &[]).await;
    let report = run_verify(&[dir.path().to_owned()]);
    let v = issues_of(&report, IssueKind::VenueGap);
    assert_eq!(v.len(), 1, "{report:#?}");
    assert!(
        v[0].detail
            .starts_with("Bitfinex feed `SEQ` skips: expected 10, got 11"),
        "{v:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn stats_add_up_per_stream_and_hour() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    // 10 s before the hour: the recording spans two hourly files.
    let rec = start(
        config(dir.path(), vec![stream("feed", &server.url())]),
        BASE_NS,
    );
    let mut conn = server.accept().await;
    conn.send_all(numbered(0, 10)).await;
    rec.wait_messages(10).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    conn.send_all(numbered(10, 5)).await;
    conn.send_text(&"x".repeat(1000)).await;
    rec.wait_messages(16).await;
    rec.stop().await;
    assert_eq!(files(dir.path()).len(), 2);

    let report = wsrec::tools::summary::compute(
        discover(&[dir.path().to_owned()]).unwrap(),
        &wsrec::tools::Filter::default(),
        &mut Progress::new(0, false),
    );
    let s = &report.streams[0];
    assert_eq!(s.stream, "feed");
    assert_eq!(s.hours.len(), 2);
    assert_eq!(
        (s.hours[0].messages, s.hours[1].messages, s.total.messages),
        (10, 6, 16)
    );
    let small: u64 = numbered(0, 15).iter().map(|m| m.len() as u64).sum();
    assert_eq!(s.total.bytes, small + 1000);
    assert_eq!(s.total.largest, 1000);
    assert_eq!(s.total.seq_gaps, 0);
    assert_eq!(s.hours[1].hour_start_ns, Some(BASE_NS + 10_000_000_000));
    let table = wsrec::tools::summary::render_table(&report);
    assert!(table.contains("2026-11-24T10:00Z"), "{table}");
    assert!(table.contains("total"), "{table}");
    let csv = wsrec::tools::summary::render_csv(&report);
    assert!(
        csv.lines().any(|l| l.starts_with("feed,total,16,")),
        "{csv}"
    );
}

/// A file of `n` envelope records, big enough that a pipe fills long before it is printed.
fn big_file(dir: &Path, n: usize) -> PathBuf {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"ts":{},"stream":"s","conn":1,"seq":{i},"msg":{{"n":{i},"pad":"{}"}}}}"#,
                T0 + i as u64,
                "p".repeat(100)
            )
        })
        .collect();
    write_lines(dir, "s-big.jsonl", &lines)
}

#[test]
fn cat_and_stats_exit_0_when_the_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), 50_000);
    for args in [
        vec!["cat"],
        vec!["cat", "--msg", "--merge"],
        vec!["stats", "--json"],
    ] {
        let mut child = wsrec()
            .args(&args)
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// Runs wsrec with stdout and stderr on a pipe nobody reads (`wsrec … 2>&1 | head -0`):
/// every write fails with EPIPE. Returns the exit code.
fn run_into_a_closed_pipe(args: &[&str], path: &Path) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = wsrec()
        .args(args)
        .arg(path)
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    status.code()
}

#[test]
fn every_command_keeps_its_exit_code_when_stdout_and_stderr_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), 10);
    let mut l = lines(&file);
    l.remove(3);
    let bad = write_lines(dir.path(), "s-bad.jsonl", &l);
    // Not a panic (101): the code the command would have given a reader.
    assert_eq!(run_into_a_closed_pipe(&["verify"], &file), Some(0));
    assert_eq!(run_into_a_closed_pipe(&["verify"], &bad), Some(1));
    assert_eq!(run_into_a_closed_pipe(&["verify", "--json"], &bad), Some(1));
    assert_eq!(
        run_into_a_closed_pipe(&["verify"], &dir.path().join("nope")),
        Some(2)
    );
    assert_eq!(run_into_a_closed_pipe(&["cat"], &file), Some(0));
    assert_eq!(run_into_a_closed_pipe(&["stats"], &file), Some(0));
    assert_eq!(
        run_into_a_closed_pipe(&["cat", "--from", "x"], &file),
        Some(2)
    );
    assert_eq!(run_into_a_closed_pipe(&["venues"], &file), Some(2));
}

#[test]
fn binary_exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_file(dir.path(), 10);
    // A clean file.
    let out = wsrec()
        .args(["verify", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["messages"], 10);

    // A damaged one: the report, then exit 1.
    let mut l = lines(&file);
    l.remove(3);
    l[5] = "garbage".to_owned();
    let bad = write_lines(dir.path(), "s-bad.jsonl", &l);
    let out = wsrec()
        .args(["verify", "--json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"], 3, "{v:#}");
    let kinds = issue_kinds(&v);
    assert!(
        kinds.contains(&"invalid_line") && kinds.contains(&"seq_gap"),
        "{kinds:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("verification failed: 3 problem(s)"),
        "{stderr}"
    );
    let out = wsrec().arg("verify").arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("s-bad.jsonl:6: not a record"), "{text}");
    assert!(text.contains("FAILED: 3 problem(s)."), "{text}");

    // cat warns about the bad line, prints the rest, exits 0.
    let out = wsrec().args(["cat", "--msg"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 8);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("s-bad.jsonl:6: not a record"),
        "{out:?}"
    );

    // Bad input: exit 2, and the message names the path or the flag.
    let out = wsrec()
        .args(["cat"])
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope: no such file or directory"));
    let out = wsrec()
        .args(["cat", "--from", "yesterday"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    // Unix seconds without a unit were once read as nanoseconds (selecting everything).
    let out = wsrec()
        .args(["cat", "--from", "1796459730"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`1796459730s` (seconds)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With its unit, a time after the recording selects nothing.
    let out = wsrec()
        .args(["cat", "--from", "4102444800s"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let out = wsrec()
        .args(["cat", "--from", "2026-11-25", "--to", "2026-11-24"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // stats as CSV through the binary.
    let out = wsrec()
        .args(["stats", "--csv"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("stream,hour_start,messages,"));
}

#[test]
fn demo_records_real_frames_offline_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    // Run as an installed binary is: not started by cargo (which sets `CARGO`).
    let out = wsrec()
        .args(["demo", "--duration", "1500ms", "--output-dir", "demo"])
        .env_remove("CARGO")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for stream in ["bybit-linear", "binance-usdm", "okx"] {
        assert!(stdout.contains(stream), "{stdout}");
    }
    assert!(stdout.contains("\n  wsrec verify demo\n"), "{stdout}");
    assert!(!stdout.contains("cargo run"), "{stdout}");
    assert!(stdout.contains("Bryant Moscon"), "{stdout}");
    let recorded = discover(&[dir.path().join("demo")]).unwrap();
    // One file per stream, or two for each when the demo ran across an hour boundary (files
    // are hourly).
    let streams: std::collections::BTreeSet<_> = recorded
        .iter()
        .map(|f| f.path.parent().unwrap().parent().unwrap().to_owned())
        .collect();
    assert_eq!(streams.len(), 3, "{recorded:?}");
    assert!(recorded.len() == 3 || recorded.len() == 6, "{recorded:?}");
    let out = wsrec()
        .args(["verify", "demo"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains(&format!("{} manifest(s) checked", recorded.len())),
        "{report}"
    );
    assert!(report.contains("break(s)"), "{report}");
    // The OKX books start from their snapshots and are proven, checksums compared.
    let r = run_verify(&[dir.path().join("demo")]);
    assert!(r.ok, "{:?}", r.issues);
    let okx: Vec<_> = r.books.iter().filter(|b| b.id.stream == "okx").collect();
    let symbols: Vec<&str> = okx.iter().map(|b| b.id.symbol.as_str()).collect();
    assert_eq!(
        symbols,
        ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"],
        "{:?}",
        r.books
    );
    for b in &okx {
        assert!(b.proven() && b.snapshots >= 1, "{b:?}");
        assert!(b.checksums_checked > 0 && b.checksums_failed == 0, "{b:?}");
    }
    assert!(r.books_proven >= 3, "{:?}", r.books);
    let okx_checksums: u64 = okx.iter().map(|b| b.checksums_checked).sum();
    assert!(r.checksums_checked >= okx_checksums && r.checksums_failed == 0);
    let out = wsrec()
        .args(["cat", "--msg", "--stream", "bybit-linear", "demo"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let embedded = include_str!("../assets/demo/bybit-linear.jsonl");
    assert_eq!(first, embedded.lines().next().unwrap());
}

#[tokio::test(start_paused = true)]
async fn raw_format_recordings_are_read_with_their_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let mut s = stream("feed", &server.url());
    s.format = wsrec::Format::Raw;
    let rec = start(config(dir.path(), vec![s]), T0);
    let mut conn = server.accept().await;
    let sent = numbered(0, 20);
    conn.send_all(sent.clone()).await;
    conn.send_text("two\nlines").await;
    conn.send_binary(&[7, 8, 9]).await;
    rec.wait_messages(22).await;
    rec.stop().await;
    let names: Vec<String> = files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "data file and sidecar: {names:?}");

    // The data file first, then the sidecar's unsafe messages (decoded).
    let (out, warn, _) = run_cat(
        &[dir.path().to_owned()],
        &CatOptions {
            msg_only: true,
            ..CatOptions::default()
        },
    );
    let mut want = sent.join("\n").into_bytes();
    want.extend_from_slice(b"\ntwo\nlines\n\x07\x08\x09\n");
    assert_eq!(out, want);
    assert_eq!(warn, "");
    let (out, _, _) = run_cat(
        &[dir.path().to_owned()],
        &CatOptions {
            msg_only: true,
            filter: wsrec::tools::Filter {
                streams: vec!["other".into()],
                ..Default::default()
            },
            ..CatOptions::default()
        },
    );
    assert!(out.is_empty());

    let report = run_verify(&[dir.path().to_owned()]);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.streams.len(), 1, "{report:#?}");
    let s = &report.streams[0];
    assert_eq!((s.format, s.messages, s.connections), ("raw", 22, 1));

    let stats = wsrec::tools::summary::compute(
        discover(&[dir.path().to_owned()]).unwrap(),
        &wsrec::tools::Filter::default(),
        &mut Progress::new(0, false),
    );
    assert_eq!(stats.streams.len(), 1, "{stats:#?}");
    assert_eq!(stats.streams[0].total.messages, 22);
}

/// The paths (relative to `dir`, sorted) a user's shell glob `pattern` expands to in `dir`:
/// bash with `globstar` (so `**` descends) and `nullglob`, as someone would type it.
fn shell_glob(dir: &Path, pattern: &str) -> Vec<String> {
    let out = Command::new("bash")
        .args(["-O", "globstar", "-O", "nullglob", "-c"])
        .arg(format!(
            "for f in {pattern}; do printf '%s\\n' \"$f\"; done"
        ))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut found: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    found.sort();
    found
}

/// `paths` relative to `dir`, sorted.
fn relative(dir: &Path, paths: &[PathBuf]) -> Vec<String> {
    let mut rel: Vec<String> = paths
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect();
    rel.sort();
    rel
}

/// An envelope recording closed and compressed (zstd) in the default layout, with its
/// manifest; returns the messages sent.
async fn record_compressed_envelope(dir: &Path) -> Vec<String> {
    let mut server = TestServer::start().await;
    let mut cfg = config(dir, vec![stream("feed", &server.url())]);
    cfg.compress = wsrec::config::Compress::Zstd;
    let rec = start(cfg, BASE_NS);
    let mut conn = server.accept().await;
    let sent = numbered(0, 30);
    conn.send_all(sent.clone()).await;
    rec.wait_messages(30).await;
    // Cross the hour: the file closes and is compressed in the background.
    tokio::time::advance(Duration::from_secs(15)).await;
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 1)
        .await;
    rec.stop().await;
    sent
}

/// A raw-format recording in the Go streamer's flat layout (`{stream}_{start_unix}.jsonl`),
/// uncompressed, with its events sidecar (holding two unsafe messages) and both manifests;
/// returns what `cat --msg-only` must print.
async fn record_go_layout_raw(dir: &Path) -> Vec<u8> {
    let mut server = TestServer::start().await;
    let mut s = stream("publicTrade.BTCUSDT", &server.url());
    s.format = wsrec::Format::Raw;
    s.path = "{stream}_{start_unix}.jsonl".to_owned();
    let rec = start(config(dir, vec![s]), T0);
    let mut conn = server.accept().await;
    let sent = numbered(0, 20);
    conn.send_all(sent.clone()).await;
    conn.send_text("two\nlines").await;
    conn.send_binary(&[7, 8, 9]).await;
    rec.wait_messages(22).await;
    rec.stop().await;
    let mut want = sent.join("\n").into_bytes();
    want.extend_from_slice(b"\ntwo\nlines\n\x07\x08\x09\n");
    want
}

/// cat (messages only), verify and stats over `dir`: cat prints `want`, verify finds no
/// problem and checks `files` manifests, stats counts `messages`.
fn tools_read(dir: &Path, want: &[u8], files: u64, messages: u64) {
    let paths = [dir.to_owned()];
    let (out, warn, _) = run_cat(
        &paths,
        &CatOptions {
            msg_only: true,
            ..CatOptions::default()
        },
    );
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
    assert_eq!(warn, "");
    let report = run_verify(&paths);
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.files, files, "{report:#?}");
    assert_eq!(report.manifests_checked, files, "{report:#?}");
    let stats = wsrec::tools::summary::compute(
        discover(&paths).unwrap(),
        &wsrec::tools::Filter::default(),
        &mut Progress::new(0, false),
    );
    assert_eq!(stats.files, files, "{stats:#?}");
    assert_eq!(stats.streams.len(), 1, "{stats:#?}");
    assert_eq!(stats.streams[0].total.messages, messages);
}

#[tokio::test(start_paused = true)]
async fn data_globs_match_only_compressed_data_not_manifests_and_every_tool_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("envelope");
    let sent = record_compressed_envelope(&env_dir).await;
    // The hour's file, and the next hour's with the stop's `disconnected`.
    let data = files(&env_dir);
    assert_eq!(data.len(), 2, "{data:?}");
    let rel = relative(&env_dir, &data);
    for pattern in ["**/*.jsonl*", "**/*.jsonl.zst", "feed/*/*.jsonl*"] {
        assert_eq!(shell_glob(&env_dir, pattern), rel, "{pattern}");
    }
    for d in &data {
        assert!(d.to_string_lossy().ends_with(".jsonl.zst"), "{data:?}");
        assert!(manifest_path(d).exists(), "{d:?}");
    }
    assert_eq!(
        all_files(&env_dir).len(),
        4,
        "data files and their manifests"
    );
    let want = format!("{}\n", sent.join("\n"));
    tools_read(&env_dir, want.as_bytes(), 2, 30);
}

#[tokio::test(start_paused = true)]
async fn go_consumer_globs_match_only_raw_data_not_the_events_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let raw_dir = dir.path().join("go");
    let want = record_go_layout_raw(&raw_dir).await;
    let written = all_files(&raw_dir);
    assert_eq!(
        written.len(),
        4,
        "data, sidecar and their manifests: {written:?}"
    );
    let data: Vec<PathBuf> = written
        .iter()
        .filter(|p| !p.to_string_lossy().contains(".events."))
        .filter(|p| !p.to_string_lossy().ends_with(".manifest.json"))
        .cloned()
        .collect();
    assert_eq!(data.len(), 1, "{written:?}");
    let data = relative(&raw_dir, &data);
    for pattern in [
        "publicTrade.BTCUSDT_*.jsonl",
        "*.jsonl",
        "*.jsonl*",
        "**/*.jsonl*",
    ] {
        assert_eq!(shell_glob(&raw_dir, pattern), data, "{pattern}");
    }
    tools_read(&raw_dir, &want, 2, 22);
}

#[tokio::test(start_paused = true)]
async fn a_recording_with_the_old_side_file_names_still_verifies_and_cats() {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("envelope");
    let raw_dir = dir.path().join("go");
    let sent = record_compressed_envelope(&env_dir).await;
    let raw_want = record_go_layout_raw(&raw_dir).await;
    // Give every side file the name versions before gave it: `X.jsonl.manifest.json`,
    // `X.events.jsonl` and `X.events.jsonl.manifest.json`.
    for d in [&env_dir, &raw_dir] {
        for p in all_files(d) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let old = if let Some(stem) = name.strip_suffix(".events.ndjson") {
                format!("{stem}.events.jsonl")
            } else if let Some(stem) = name.strip_suffix(".events.manifest.json") {
                format!("{stem}.events.jsonl.manifest.json")
            } else if let Some(stem) = name.strip_suffix(".manifest.json") {
                format!("{stem}.jsonl.manifest.json")
            } else {
                continue;
            };
            std::fs::rename(&p, p.with_file_name(old)).unwrap();
        }
    }
    let mut names: Vec<String> = all_files(&raw_dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "publicTrade.BTCUSDT_1795518000.events.jsonl",
            "publicTrade.BTCUSDT_1795518000.events.jsonl.manifest.json",
            "publicTrade.BTCUSDT_1795518000.jsonl",
            "publicTrade.BTCUSDT_1795518000.jsonl.manifest.json",
        ]
    );
    tools_read(&env_dir, format!("{}\n", sent.join("\n")).as_bytes(), 2, 30);
    tools_read(&raw_dir, &raw_want, 2, 22);
}

/// Polls `cond` every 20 ms for up to 30 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn verify_sees_a_killed_recorder_and_cat_reads_everything_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start().await;
    let url = server.url();
    let spawn = || {
        wsrec()
            .args(["record", &url, "--name", "feed", "--quiet"])
            .args(["--flush-interval", "50ms", "--compress", "none", "-o"])
            .arg(&data)
            .arg("--status-socket")
            .arg(dir.path().join("s.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = spawn();
    let mut conn = server.accept().await;
    let sent = numbered(0, 50);
    conn.send_all(sent.clone()).await;
    // Everything is in the open file (connected + 50 messages), then the recorder dies.
    eventually("the first run's messages on disk", || {
        files(&data)
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".open") && lines(p).len() >= 51)
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();

    let mut second = spawn();
    let mut conn = server.accept().await;
    let more = numbered(50, 10);
    conn.send_all(more.clone()).await;
    eventually("the second run's messages on disk", || {
        files(&data).iter().any(|p| {
            p.to_string_lossy().ends_with(".open")
                && lines(p).iter().filter(|l| l.contains("\"seq\":")).count() >= 10
        })
    })
    .await;
    // SAFETY: kill(2) on our own child with a valid signal.
    assert_eq!(unsafe { libc::kill(second.id() as i32, libc::SIGTERM) }, 0);
    assert!(second.wait().unwrap().success());

    let out = wsrec().args(["cat", "--msg"]).arg(&data).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let want = [sent, more].concat().join("\n") + "\n";
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);

    let out = wsrec()
        .args(["verify", "--json"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("recovered", "problem")], "{v:#}");
    assert_eq!(v["streams"][0]["unclean_stops"], 1);
    assert_eq!(v["streams"][0]["runs"], 2);
    assert_eq!(v["streams"][0]["messages"], 60);
}

#[test]
fn verify_names_the_stream_of_an_old_unnamed_repair_and_reports_it() {
    // Before repairs named the stream, a file killed before its first flush came back as
    // nothing but a `recovered` event of stream "".
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("feed/2026-11-24");
    std::fs::create_dir_all(&day).unwrap();
    let p = write_lines(
        &day,
        "feed-20261124T110000Z.jsonl",
        &[format!(
            r#"{{"ts":{T0},"stream":"","conn":0,"event":"recovered","file":"feed-20261124T110000Z.jsonl","cut_bytes":0,"lines":0}}"#
        )],
    );
    let r = run_verify(&[p]);
    let names: Vec<&str> = r.streams.iter().map(|s| s.stream.as_str()).collect();
    assert_eq!(names, ["feed"], "the file name's stream, never \"\"");
    let rec = issues_of(&r, IssueKind::Recovered);
    assert_eq!(rec.len(), 1, "{r:#?}");
    assert_eq!(rec[0].severity, Severity::Problem);
    assert_eq!(rec[0].stream.as_deref(), Some("feed"));
    assert!(
        rec[0].detail.contains("before it wrote anything"),
        "{rec:?}"
    );
    assert!(!r.ok);
}
