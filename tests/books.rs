//! Order books rebuilt from recordings made through real sockets: `wsrec verify` proves every
//! book (OKX's CRC32 checksums on real frames), names the line where a book breaks (a changed
//! level, an update lost at the venue, two swapped), explains a disconnect, and `wsrec book`
//! prints the book a test rebuilds on its own.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// 2026-11-24T11:00:10Z: clear of the hour boundary, so a short recording is one file.
const T0: u64 = BASE_NS + 20_000_000_000;

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

/// The real OKX book frames: three books (BTC-USDT, BTC-USD-220527, UNI-USD-SWAP), each a
/// snapshot then updates, every one with its checksum.
fn okx() -> Vec<String> {
    corpus("okx_books.jsonl")
}

/// Records `conns` (the frames each connection sends, in order; the server closes each but
/// the last) on one stream, stops cleanly, and returns the recording directory's files.
async fn record(dir: &Path, conns: &[Vec<String>]) -> Vec<PathBuf> {
    let mut server = TestServer::start().await;
    let rec = start(config(dir, vec![stream("okx", &server.url())]), T0);
    let mut sent = 0u64;
    // The last connection stays open until the recorder has stopped: dropped earlier, its end
    // could reach the recorder first and be recorded as the server's.
    let mut open = None;
    for (i, frames) in conns.iter().enumerate() {
        let conn = open.insert(server.accept().await);
        // 1 ms of (paused) time apart: receive times spread over the recording.
        for f in frames {
            conn.send_text(f).await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        sent += frames.len() as u64;
        rec.wait_messages(sent).await;
        if i + 1 < conns.len() {
            conn.close(1001, "going away").await;
        }
    }
    rec.stop().await;
    drop(open);
    files(dir)
}

/// `wsrec verify --json DIR`: the report and the exit code.
fn verify(dir: &Path) -> (Value, i32) {
    let out = wsrec()
        .args(["verify", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap())
}

/// The book of `symbol` in a verify report.
fn book<'a>(report: &'a Value, symbol: &str) -> &'a Value {
    report["books"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["symbol"] == symbol)
        .unwrap_or_else(|| panic!("no book {symbol}: {report:#}"))
}

/// The book-break issues of a report, as (line, detail).
fn breaks(report: &Value) -> Vec<(u64, String)> {
    report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "book_break")
        .map(|i| {
            (
                i["line"].as_u64().unwrap(),
                i["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The file line (1-based) of the `n`-th message record that contains `needle`.
fn line_of(file: &Path, needle: &str, n: usize) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains("\"seq\":") && l.contains(needle))
        .nth(n)
        .map(|(i, _)| i as u64 + 1)
        .unwrap()
}

/// The test's own rebuild of an OKX book from frames (prices ordered as floats, sizes as
/// text): the top `depth` (price, size) of bids (highest first) and asks (lowest first).
fn rebuild(frames: &[String], symbol: &str, depth: usize) -> [Vec<(String, String)>; 2] {
    let mut sides: [BTreeMap<u64, (String, String)>; 2] = Default::default();
    for f in frames {
        let v: Value = serde_json::from_str(f).unwrap();
        if v["arg"]["instId"] != symbol {
            continue;
        }
        if v["action"] == "snapshot" {
            sides = Default::default();
        }
        for (i, side) in ["bids", "asks"].iter().enumerate() {
            for level in v["data"][0][side].as_array().unwrap() {
                let price = level[0].as_str().unwrap().to_owned();
                let size = level[1].as_str().unwrap().to_owned();
                // Positive prices order like their f64 bit patterns.
                let key = price.parse::<f64>().unwrap().to_bits();
                if size.parse::<f64>().unwrap() == 0.0 {
                    sides[i].remove(&key);
                } else {
                    sides[i].insert(key, (price, size));
                }
            }
        }
    }
    let bids = sides[0].values().rev().take(depth).cloned().collect();
    let asks = sides[1].values().take(depth).cloned().collect();
    [bids, asks]
}

/// The indices of `symbol`'s updates among `frames`.
fn updates_of(frames: &[String], symbol: &str) -> Vec<usize> {
    let quoted = format!("\"{symbol}\"");
    (0..frames.len())
        .filter(|&i| frames[i].contains(&quoted) && frames[i].contains("\"update\""))
        .collect()
}

/// Records `frames`, verifies, and checks the one problem is `symbol`'s book breaking at the
/// line of its `n`-th recorded update.
async fn breaks_once_at(frames: Vec<String>, symbol: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let files = record(dir.path(), &[frames]).await;
    let (report, code) = verify(dir.path());
    assert_eq!(code, 1, "{report:#}");
    // The recording itself is whole (no seq gap): the venue's feed is what is wrong.
    assert!(!issue_kinds(&report).contains(&"seq_gap"), "{report:#}");
    let b = breaks(&report);
    assert_eq!(b.len(), 1, "{report:#}");
    let needle = format!("\"{symbol}\"}},\"action\":\"update\"");
    assert_eq!(b[0].0, line_of(&files[0], &needle, n));
}

#[tokio::test(start_paused = true)]
async fn every_okx_book_is_proven_and_every_checksum_verified() {
    let dir = tempfile::tempdir().unwrap();
    let frames = okx();
    record(dir.path(), std::slice::from_ref(&frames)).await;
    let (report, code) = verify(dir.path());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["books"].as_array().unwrap().len(), 3, "{report:#}");
    assert_eq!(report["books_proven"], 3);
    let checksums = frames.iter().filter(|f| f.contains("\"checksum\"")).count();
    assert_eq!(report["checksums_checked"], checksums as u64);
    assert_eq!(report["checksums_failed"], 0);
    let btc = book(&report, "BTC-USDT");
    let updates = frames
        .iter()
        .filter(|f| f.contains("\"BTC-USDT\"") && f.contains("\"update\""))
        .count();
    assert_eq!(btc["updates"], updates as u64);
    // The recorder's stop closes the connection: the span ends with it.
    assert_eq!(btc["spans"][0]["end"], "connection_ended");
    assert_eq!(btc["venue"], "okx");
    assert_eq!(btc["channel"], "books");
}

#[tokio::test(start_paused = true)]
async fn a_changed_size_breaks_the_checksum_at_that_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = okx();
    // The fifth BTC-USDT update: its first level's size gets one more digit.
    let i = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.contains("\"BTC-USDT\"") && f.contains("\"update\""))
        .nth(4)
        .unwrap()
        .0;
    let f = &mut frames[i];
    let level = f.find("s\":[[\"").unwrap() + 6;
    let size = level + f[level..].find("\",\"").unwrap() + 3;
    f.insert(size, '9');
    let files = record(dir.path(), &[frames]).await;
    let (report, code) = verify(dir.path());
    assert_eq!(code, 1, "{report:#}");
    let at = line_of(&files[0], "\"BTC-USDT\"},\"action\":\"update\"", 4);
    let b = breaks(&report);
    assert_eq!(b.len(), 1, "{report:#}");
    assert_eq!(b[0].0, at, "{b:?}");
    assert!(b[0].1.contains("checksum mismatch"), "{b:?}");
    assert_eq!(report["checksums_failed"], 1);
    let btc = book(&report, "BTC-USDT");
    assert_eq!(btc["spans"][0]["end"], "break");
    assert_eq!(btc["spans"][0]["to"]["line"], at);
    // The other books are not touched.
    assert_eq!(report["books_proven"], 2);

    // The text report names the book, the line and why.
    let out = wsrec().arg("verify").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Order books: 3 rebuilt, 2 proven"), "{text}");
    let place = format!(
        "{}:{at}: [okx] OKX books BTC-USDT book: checksum mismatch",
        files[0].display()
    );
    assert!(text.contains(&place), "{text}");
    assert!(
        text.contains("[okx] OKX books BTC-USDT: 1 break(s)"),
        "{text}"
    );

    // --no-books skips them: these frames predate OKX's seqId, so nothing else finds it.
    let out = wsrec()
        .args(["verify", "--json", "--no-books"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["books"].as_array().unwrap().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_update_lost_at_the_venue_breaks_the_book_at_the_next() {
    let mut frames = okx();
    let updates = updates_of(&frames, "BTC-USDT");
    frames.remove(updates[10]);
    breaks_once_at(frames, "BTC-USDT", 10).await;
}

#[tokio::test(start_paused = true)]
async fn two_swapped_updates_break_the_book() {
    let mut frames = okx();
    let updates = updates_of(&frames, "UNI-USD-SWAP");
    frames.swap(updates[20], updates[21]);
    breaks_once_at(frames, "UNI-USD-SWAP", 20).await;
}

#[tokio::test(start_paused = true)]
async fn a_disconnect_ends_a_span_and_the_new_connection_proves_the_book_again() {
    let dir = tempfile::tempdir().unwrap();
    let frames = okx();
    let btc: Vec<String> = frames
        .iter()
        .filter(|f| f.contains("\"BTC-USDT\""))
        .cloned()
        .collect();
    // The venue sends a new snapshot on the new connection, as OKX does after a resubscribe.
    record(dir.path(), &[btc[..40].to_vec(), btc[..60].to_vec()]).await;
    let (report, code) = verify(dir.path());
    assert_eq!(code, 0, "{report:#}");
    let b = book(&report, "BTC-USDT");
    assert_eq!(b["spans_total"], 2, "{b:#}");
    assert_eq!(b["spans"][0]["end"], "connection_ended");
    assert_eq!(b["spans"][0]["conn"], 1);
    assert_eq!(b["spans"][1]["end"], "connection_ended");
    assert_eq!(b["spans"][1]["conn"], 2);
    assert_eq!(b["updates"], 39 + 59);
    assert_eq!(b["breaks"], 0);
    assert_eq!(
        report["streams"][0]["disconnects"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn wsrec_book_prints_the_book_the_test_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let frames = okx();
    record(dir.path(), std::slice::from_ref(&frames)).await;
    let received: Vec<(u64, String)> = records(dir.path())
        .iter()
        .filter(|r| r.get("seq").is_some())
        .map(|r| (r["ts"].as_u64().unwrap(), r["msg"].to_string()))
        .collect();
    // At the end, as JSON: the top 5 equal the test's own rebuild.
    let out = wsrec()
        .args([
            "book", "--symbol", "btc-usdt", "--depth", "5", "--format", "jsonl",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    let [bids, asks] = rebuild(&frames, "BTC-USDT", 5);
    let pairs = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l[0].as_str().unwrap().to_owned(),
                    l[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(pairs(&rows[0]["bids"]), bids);
    assert_eq!(pairs(&rows[0]["asks"]), asks);
    assert_eq!(rows[0]["symbol"], "BTC-USDT");

    // As CSV every 10 ms (the frames came 1 ms apart).
    let out = wsrec()
        .args([
            "book",
            "--symbol",
            "UNI-USD-SWAP",
            "--every",
            "10ms",
            "--depth",
            "3",
            "--format",
            "csv",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "ts,stream,venue,channel,symbol,bid_price_0,bid_size_0,bid_price_1,bid_size_1,bid_price_2,bid_size_2,ask_price_0,ask_size_0,ask_price_1,ask_size_1,ask_price_2,ask_size_2"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty(), "{text}");
    let mut last = 0u64;
    for r in &rows {
        let cols: Vec<&str> = r.split(',').collect();
        assert_eq!(cols.len(), 17, "{r}");
        let ts: u64 = cols[0].parse().unwrap();
        assert_eq!(ts % 10_000_000, 0, "{r}");
        assert!(ts > last, "{r}");
        last = ts;
        assert_eq!(&cols[1..5], ["okx", "okx", "books", "UNI-USD-SWAP"]);
        // The book as the test rebuilds it from the messages received before the tick.
        let before: Vec<String> = received
            .iter()
            .filter(|(t, _)| *t < ts)
            .map(|(_, m)| m.clone())
            .collect();
        let [bids, asks] = rebuild(&before, "UNI-USD-SWAP", 3);
        let mut want = Vec::new();
        for (p, q) in bids.iter().chain(&asks) {
            want.push(p.as_str());
            want.push(q.as_str());
        }
        assert_eq!(&cols[5..], want, "{r}");
    }
    assert!(rows.len() >= 20, "{text}");

    // Before any snapshot there is no book: a clear error, exit 1.
    let out = wsrec()
        .args(["book", "--symbol", "BTC-USDT", "--at", "2020-01-01"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no proven book of `BTC-USDT` at 2020-01-01T00:00:00.000Z"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn books_in_binary_frames_are_read_gzip_and_plain() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start().await;
    let rec = start(config(dir.path(), vec![stream("bin", &server.url())]), T0);
    let mut conn = server.accept().await;
    // HTX: every frame gzip-compressed; the book every message.
    for v in 1..=3u64 {
        let text = format!(
            r#"{{"ch":"market.btcusdt.depth.step0","ts":1,"tick":{{"bids":[[52690.{v},0.5],[52689,1.25]],"asks":[[52691.{v},2]],"version":{v},"ts":1}}}}"#
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        conn.send_binary(&gz.finish().unwrap()).await;
    }
    // Upbit: JSON in binary frames.
    let upbit = r#"{"type":"orderbook","code":"KRW-BTC","timestamp":1,"total_ask_size":1,"total_bid_size":1,"orderbook_units":[{"ask_price":101.0,"bid_price":100.0,"ask_size":0.5,"bid_size":1.5E-4}],"stream_type":"REALTIME","level":0}"#;
    conn.send_binary(upbit.as_bytes()).await;
    rec.wait_messages(4).await;
    rec.stop().await;
    // Stored as received: base64 of the frames, not inflated.
    assert_eq!(
        records(dir.path())
            .iter()
            .filter(|r| r.get("bin").is_some())
            .count(),
        4
    );
    let (report, code) = verify(dir.path());
    assert_eq!(code, 0, "{report:#}");
    let htx = book(&report, "btcusdt");
    assert_eq!(
        (htx["venue"].as_str(), htx["snapshots"].as_u64()),
        (Some("htx"), Some(3))
    );
    assert_eq!(book(&report, "KRW-BTC")["venue"], "upbit");
    assert_eq!(report["books_proven"], 2);
    // The book as the last HTX frame had it, number text as sent.
    let out = wsrec()
        .args(["book", "--symbol", "BTCUSDT", "--format", "jsonl"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        row["bids"],
        serde_json::json!([["52690.3", "0.5"], ["52689", "1.25"]])
    );
    assert_eq!(row["asks"], serde_json::json!([["52691.3", "2"]]));
}
