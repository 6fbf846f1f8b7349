//! `wsrec export` (issue 21): real recordings made through a real socket (the in-process
//! recorder, tokio's paused time, a tokio-tungstenite server on 127.0.0.1:0), exported with the
//! binary, and read back with the parquet crate: every message byte-identical, `ts` exact, as
//! many rows as `wsrec cat` prints. Then the README's cookbook ("Reading with DuckDB, polars and
//! jq"): every query in it is run against real DuckDB and polars (pip, pinned by
//! `scripts/test.sh`) and jq, and its result checked.
#![cfg(feature = "parquet")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use arrow_array::{Array, BinaryArray, Int64Array, StringArray, TimestampNanosecondArray};
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

fn wsrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsrec"));
    c.env_remove("RUST_LOG");
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One row of an exported file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    ts: Option<i64>,
    stream: String,
    conn: Option<i64>,
    seq: Option<i64>,
    event: Option<String>,
    msg: Option<String>,
    text: Option<String>,
    bin: Option<Vec<u8>>,
    snapshot: Option<String>,
    detail: Option<String>,
}

/// Every row of the Parquet file `path`, and the number of row groups.
fn read_parquet(path: &Path) -> (Vec<Row>, usize) {
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let groups = builder.metadata().num_row_groups();
    for rg in builder.metadata().row_groups() {
        for col in rg.columns() {
            // The level is not stored in the file.
            assert!(
                matches!(col.compression(), parquet::basic::Compression::ZSTD(_)),
                "{}: {:?}",
                col.column_path(),
                col.compression()
            );
        }
    }
    let schema = builder.schema().clone();
    let names: Vec<(&str, String)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().to_string()))
        .collect();
    assert_eq!(
        names,
        [
            ("ts", "Timestamp(ns, \"UTC\")".to_owned()),
            ("stream", "Utf8".to_owned()),
            ("conn", "Int64".to_owned()),
            ("seq", "Int64".to_owned()),
            ("event", "Utf8".to_owned()),
            ("msg", "Utf8".to_owned()),
            ("text", "Utf8".to_owned()),
            ("bin", "Binary".to_owned()),
            ("snapshot", "Utf8".to_owned()),
            ("detail", "Utf8".to_owned()),
        ]
    );
    let mut rows = Vec::new();
    for batch in builder.build().unwrap() {
        let b = batch.unwrap();
        let col = |i: usize| b.column(i).clone();
        let ts = col(0);
        let ts = ts
            .as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap();
        let strs: Vec<_> = [1, 4, 5, 6, 8, 9]
            .iter()
            .map(|&i| {
                col(i)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            })
            .collect();
        let ints: Vec<_> = [2, 3]
            .iter()
            .map(|&i| {
                col(i)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone()
            })
            .collect();
        let bin = col(7);
        let bin = bin.as_any().downcast_ref::<BinaryArray>().unwrap();
        let s = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
        let n = |a: &Int64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
        for i in 0..b.num_rows() {
            rows.push(Row {
                ts: (!ts.is_null(i)).then(|| ts.value(i)),
                stream: s(&strs[0], i).expect("stream is never null"),
                conn: n(&ints[0], i),
                seq: n(&ints[1], i),
                event: s(&strs[1], i),
                msg: s(&strs[2], i),
                text: s(&strs[3], i),
                bin: (!bin.is_null(i)).then(|| bin.value(i).to_vec()),
                snapshot: s(&strs[4], i),
                detail: s(&strs[5], i),
            });
        }
    }
    (rows, groups)
}

/// `wsrec cat ARGS` printed lines.
fn cat_lines(args: &[&str]) -> Vec<String> {
    let o = run(wsrec().arg("cat").args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `wsrec export ARGS`, expected to succeed.
fn export(args: &[&str]) -> Output {
    let o = run(wsrec().arg("export").args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// Every file under `dir` whose name starts with a dot (temporaries).
fn hidden_files(dir: &Path) -> Vec<PathBuf> {
    all_files(dir)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

/// The `binance` frames (Binance has `e` and `E` in one object) and the `bybit` ones.
fn frames() -> (Vec<String>, Vec<String>) {
    (
        corpus("binance-spot_depthUpdate.jsonl"),
        corpus("bybit-linear_publicTrade.jsonl"),
    )
}

/// Records two streams, `binance` and `bybit` (the corpus frames of [`frames`]), across an hour
/// boundary with zstd: the first hour's files are `.jsonl.zst`, the second's plain `.jsonl`
/// (the recorder stops before it compresses them).
async fn record_two_streams(dir: &Path) {
    let mut server = TestServer::start().await;
    let base = format!("ws://{}", server.addr);
    let mut cfg = config(
        dir,
        vec![
            stream("binance", &format!("{base}/binance")),
            stream("bybit", &format!("{base}/bybit")),
        ],
    );
    cfg.compress = wsrec::config::Compress::Zstd;
    let rec = start(cfg, BASE_NS);
    let (binance, bybit) = frames();
    let mut conns = BTreeMap::new();
    for _ in 0..2 {
        let c = server.accept().await;
        conns.insert(c.path.clone(), c);
    }
    let (b_half, y_half) = (binance.len() / 2, bybit.len() / 2);
    let total = |s: &wsrec::observe::stats::Stats| -> u64 {
        s.streams.iter().map(|x| x.messages.load(Relaxed)).sum()
    };
    let c = conns.get_mut("/binance").unwrap();
    c.send_all(binance[..b_half].iter().cloned()).await;
    let c = conns.get_mut("/bybit").unwrap();
    c.send_all(bybit[..y_half].iter().cloned()).await;
    let want = (b_half + y_half) as u64;
    rec.wait_until(|s| total(s) >= want).await;
    // Cross the hour: the first files close and are compressed.
    tokio::time::advance(Duration::from_secs(15)).await;
    rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 2)
        .await;
    let c = conns.get_mut("/binance").unwrap();
    c.send_all(binance[b_half..].iter().cloned()).await;
    let c = conns.get_mut("/bybit").unwrap();
    c.send_all(bybit[y_half..].iter().cloned()).await;
    let want = (binance.len() + bybit.len()) as u64;
    rec.wait_until(|s| total(s) >= want).await;
    rec.stop().await;
}

/// The ts of every record line, as written (exact: parsed as an integer, never a double).
fn line_ts(line: &str) -> i64 {
    let v: Value = serde_json::from_str(line).unwrap();
    i64::try_from(v["ts"].as_u64().unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn export_keeps_every_message_byte_for_byte_and_every_ts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One stream: Binance frames (with `e` and `E`), a text message that is not JSON, a binary
    // one, a JSON message whose number spelling a re-serialiser would change.
    let mut sent = corpus("binance-spot_depthUpdate.jsonl");
    sent.push(r#"{"price":1.50, "qty" : 1e3}"#.to_owned());
    sent.push("not json: a plain text message".to_owned());
    let binary = vec![0u8, 1, 2, 0xff, b'\n', 0x80];
    {
        let mut server = TestServer::start().await;
        let mut cfg = config(&data, vec![stream("feed", &server.url())]);
        cfg.compress = wsrec::config::Compress::Zstd;
        let rec = start(cfg, BASE_NS);
        let mut conn = server.accept().await;
        let half = sent.len() / 2;
        conn.send_all(sent[..half].iter().cloned()).await;
        rec.wait_messages(half as u64).await;
        tokio::time::advance(Duration::from_secs(15)).await;
        rec.wait_until(|s| s.files_compressed.load(Relaxed) >= 1)
            .await;
        conn.send_all(sent[half..].iter().cloned()).await;
        conn.send_binary(&binary).await;
        rec.wait_messages(sent.len() as u64 + 1).await;
        rec.stop().await;
    }
    let files = files(&data);
    assert!(
        files.iter().any(|f| f.to_string_lossy().ends_with(".zst")),
        "{files:?}"
    );
    let out = dir.path().join("out.parquet");
    let o = export(&[data.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    let (rows, groups) = read_parquet(&out);
    assert_eq!(groups, 1);
    // As many rows as `wsrec cat` prints, in the same order, each with the line's ts exactly.
    let lines = cat_lines(&[data.to_str().unwrap()]);
    assert_eq!(rows.len(), lines.len());
    assert!(
        said.contains(&format!(
            "{} rows ({} messages, ",
            rows.len(),
            sent.len() + 1
        )),
        "{said}"
    );
    for (row, line) in rows.iter().zip(&lines) {
        assert_eq!(row.ts, Some(line_ts(line)), "{line}");
        assert_eq!(row.stream, "feed");
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(row.conn, v["conn"].as_i64());
        assert_eq!(row.seq, v["seq"].as_i64());
        assert_eq!(row.event.as_deref(), v["event"].as_str());
        // An event keeps its whole line.
        if row.event.is_some() {
            assert_eq!(row.detail.as_deref(), Some(line.as_str()));
        } else {
            assert_eq!(row.detail, None);
        }
    }
    // Every message as sent: JSON text byte-for-byte in `msg`, other text in `text`, binary in
    // `bin`, one of them per message.
    let got: Vec<&Row> = rows.iter().filter(|r| r.seq.is_some()).collect();
    assert_eq!(got.len(), sent.len() + 1);
    for (i, (row, want)) in got.iter().zip(&sent).enumerate() {
        if want.starts_with('{') {
            assert_eq!(row.msg.as_deref(), Some(want.as_str()), "message {i}");
            assert_eq!((&row.text, &row.bin), (&None, &None));
        } else {
            assert_eq!(row.text.as_deref(), Some(want.as_str()), "message {i}");
            assert_eq!((&row.msg, &row.bin), (&None, &None));
        }
        assert_eq!(row.seq, Some(i as i64));
    }
    let last = got.last().unwrap();
    assert_eq!(last.bin.as_deref(), Some(&binary[..]));
    assert_eq!((&last.msg, &last.text), (&None, &None));
    let events: Vec<&str> = rows.iter().filter_map(|r| r.event.as_deref()).collect();
    assert_eq!(events.first(), Some(&"connected"));
    assert_eq!(events.last(), Some(&"disconnected"));
    // Nothing is left beside the output.
    assert!(hidden_files(dir.path()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn export_selects_and_orders_like_cat() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    record_two_streams(&data).await;
    let d = data.to_str().unwrap();
    let from = "2026-11-24T11:00:00Z";
    let to = "2026-11-24T11:00:00.5Z";
    for (i, sel) in [
        vec![],
        vec!["-s", "binance"],
        vec!["--from", from],
        vec!["--to", to, "-s", "bybit"],
        vec!["--merge"],
        vec!["--merge", "--from", from, "--to", "2026-11-24T12:00:00Z"],
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("sel{i}.parquet"));
        let mut args = vec![d, "-o", out.to_str().unwrap()];
        args.extend(&sel);
        export(&args);
        let (rows, _) = read_parquet(&out);
        let mut cat_args = vec![d];
        cat_args.extend(&sel);
        let lines = cat_lines(&cat_args);
        assert!(!lines.is_empty(), "{sel:?}");
        let want: Vec<(i64, String)> = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (line_ts(l), v["stream"].as_str().unwrap().to_owned())
            })
            .collect();
        let got: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.ts.unwrap(), r.stream.clone()))
            .collect();
        assert_eq!(got, want, "{sel:?}");
    }
    // The selection really selects: one stream, or the second hour only.
    let (rows, _) = read_parquet(&dir.path().join("sel1.parquet"));
    assert!(rows.iter().all(|r| r.stream == "binance"));
    let (binance, bybit) = frames();
    assert_eq!(
        rows.iter().filter(|r| r.seq.is_some()).count(),
        binance.len()
    );
    let (rows, _) = read_parquet(&dir.path().join("sel0.parquet"));
    assert_eq!(
        rows.iter().filter(|r| r.seq.is_some()).count(),
        binance.len() + bybit.len()
    );
}

#[tokio::test(start_paused = true)]
async fn export_reads_raw_recordings_with_what_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut sent = corpus("bybit-linear_publicTrade.jsonl");
    sent.truncate(20);
    sent.push("plain text, raw".to_owned());
    {
        let mut server = TestServer::start().await;
        let mut cfg = config(&data, vec![stream("feed", &server.url())]);
        cfg.streams[0].format = wsrec::Format::Raw;
        let rec = start(cfg, BASE_NS + 20_000_000_000);
        let mut conn = server.accept().await;
        conn.send_all(sent.iter().cloned()).await;
        // Binary cannot be a raw line: it goes to the sidecar as an envelope record.
        conn.send_binary(&[1, 2, 3]).await;
        rec.wait_messages(sent.len() as u64 + 1).await;
        rec.stop().await;
    }
    let out = dir.path().join("raw.parquet");
    export(&[data.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let (rows, _) = read_parquet(&out);
    assert_eq!(rows.len(), cat_lines(&[data.to_str().unwrap()]).len());
    // Raw lines: the message verbatim, no time, connection or sequence number.
    let raw: Vec<&Row> = rows.iter().filter(|r| r.ts.is_none()).collect();
    assert_eq!(raw.len(), sent.len());
    for (row, want) in raw.iter().zip(&sent) {
        assert_eq!(row.stream, "feed");
        assert_eq!((row.conn, row.seq), (None, None));
        let got = row.msg.as_ref().or(row.text.as_ref()).unwrap();
        assert_eq!(got, want);
    }
    assert_eq!(raw.last().unwrap().text.as_deref(), Some("plain text, raw"));
    // The sidecar's records keep theirs.
    let bin: Vec<&Row> = rows.iter().filter(|r| r.bin.is_some()).collect();
    assert_eq!(bin.len(), 1);
    assert_eq!(bin[0].bin.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(bin[0].seq, Some(sent.len() as i64));
    assert!(bin[0].ts.is_some());
    assert!(rows.iter().any(|r| r.event.as_deref() == Some("connected")));
}

#[tokio::test(start_paused = true)]
async fn export_never_overwrites_by_surprise_and_leaves_no_half_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start().await;
    let rec = start(
        config(&data, vec![stream("feed", &server.url())]),
        BASE_NS + 20_000_000_000,
    );
    let mut conn = server.accept().await;
    conn.send_all(corpus("binance-spot_depthUpdate.jsonl"))
        .await;
    rec.wait_messages(177).await;
    rec.stop().await;
    let d = data.to_str().unwrap();
    let out = dir.path().join("out.parquet");
    let o = out.to_str().unwrap();

    // An existing output is kept, unless --force.
    std::fs::write(&out, b"precious").unwrap();
    let r = run(wsrec().args(["export", d, "-o", o]));
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("exists; give a new file name, or --force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    export(&[d, "-o", o, "--force"]);
    assert_eq!(read_parquet(&out).0.len(), cat_lines(&[d]).len());

    // Bad outputs and inputs are bad input (exit 2), and nothing is written.
    let missing_dir = dir.path().join("nope/out.parquet");
    for (args, says) in [
        (
            vec![d, "-o", missing_dir.to_str().unwrap()],
            "is not a directory; create it first",
        ),
        (
            vec![d, "-o", dir.path().to_str().unwrap()],
            "is a directory; give the Parquet file to write",
        ),
        (
            vec![dir.path().join("none").to_str().unwrap(), "-o", "x.parquet"],
            "no such file or directory",
        ),
        (
            vec![d, "-o", "y.parquet", "--from", "1796459730"],
            "ambiguous",
        ),
    ] {
        let r = run(wsrec().arg("export").args(&args).current_dir(dir.path()));
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
        assert!(stderr(&r).contains(says), "{args:?}: {}", stderr(&r));
    }
    assert!(!dir.path().join("x.parquet").exists());
    assert!(!dir.path().join("y.parquet").exists());

    // A write that fails part way (the file size limit) leaves neither the output nor its
    // temporary, and exits 1 naming the output.
    let fresh = dir.path().join("fresh.parquet");
    let r = run(Command::new("bash").args([
        "-c",
        // SIGXFSZ ignored, so the write fails with EFBIG instead of killing the process.
        r#"trap '' XFSZ; ulimit -f 1; exec "$0" export "$1" -o "$2""#,
        env!("CARGO_BIN_EXE_wsrec"),
        d,
        fresh.to_str().unwrap(),
    ]));
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains(&format!("cannot write {}", fresh.display())),
        "{}",
        stderr(&r)
    );
    assert!(!fresh.exists());
    assert!(
        hidden_files(dir.path()).is_empty(),
        "{:?}",
        all_files(dir.path())
    );

    // A closed stdout (the summary line has no reader) is no failure, and no panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let piped = dir.path().join("piped.parquet");
    let r = run(wsrec()
        .args(["export", d, "-o", piped.to_str().unwrap()])
        .stdout(writer));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert!(piped.is_file());

    // A compressed file cut short: its lines before the damage are exported, and the exit code
    // says something is missing.
    // Records of varied content (50,000, ~3 MB: many zstd blocks, so some come before the cut).
    let mut x: u64 = 1;
    let text: String = (0..50_000u64)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            format!(
                "{{\"ts\":{},\"stream\":\"feed\",\"conn\":1,\"seq\":{i},\"msg\":{{\"r\":{x}}}}}\n",
                BASE_NS + i
            )
        })
        .collect();
    let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
    let cut_dir = dir.path().join("cut");
    std::fs::create_dir(&cut_dir).unwrap();
    std::fs::write(
        cut_dir.join("feed-20261124T110000Z.jsonl.zst"),
        &zst[..zst.len() * 2 / 3],
    )
    .unwrap();
    let cut = dir.path().join("cut.parquet");
    let r = run(wsrec().args([
        "export",
        cut_dir.to_str().unwrap(),
        "-o",
        cut.to_str().unwrap(),
    ]));
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("1 file(s) could not be read to the end"),
        "{}",
        stderr(&r)
    );
    let (rows, _) = read_parquet(&cut);
    assert!(!rows.is_empty() && rows.len() < 50_000, "{}", rows.len());
}

// ---------------------------------------------------------------------------------------------
// The README's cookbook, run.

/// Whether `scripts/test.sh` runs us: then a missing tool fails the test instead of skipping it.
fn required() -> bool {
    std::env::var("WSREC_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

/// A loud skip on the real stderr (the harness hides the output of passing tests), or a failure
/// under `WSREC_INTEROP_REQUIRED=1`.
fn skip_or_fail(why: &str) {
    assert!(!required(), "{why}");
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPED cookbook test: {why} !!!!!\n"
    );
}

/// A Python that imports duckdb and polars (`WSREC_INTEROP_PYTHON`, default `python3`, with
/// `WSREC_INTEROP_PYTHONPATH`, default `target/interop/python`, where `scripts/test.sh`
/// pip-installs the pinned versions).
fn python() -> Option<Python> {
    let lib = std::env::var_os("WSREC_INTEROP_PYTHONPATH").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop/python"),
        PathBuf::from,
    );
    let interpreter = std::env::var_os("WSREC_INTEROP_PYTHON").unwrap_or_else(|| "python3".into());
    let cmd = || {
        let mut c = Command::new(&interpreter);
        c.env("PYTHONPATH", &lib);
        c
    };
    let ok = cmd()
        .args(["-c", "import duckdb, polars"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(Python { interpreter, lib });
    }
    skip_or_fail(&format!(
        "{} with PYTHONPATH={} cannot import duckdb and polars; `bash scripts/test.sh` pip-installs them there",
        interpreter.to_string_lossy(),
        lib.display()
    ));
    None
}

/// How to start the Python that has duckdb and polars.
struct Python {
    interpreter: std::ffi::OsString,
    lib: PathBuf,
}

impl Python {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.interpreter);
        c.env("PYTHONPATH", &self.lib);
        c
    }
}

/// Whether `jq` runs.
fn has_jq() -> bool {
    let ok = Command::new("jq")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip_or_fail("jq is not installed; `bash scripts/test.sh` installs it (Debian `jq`)");
    }
    ok
}

/// A fenced code block of the cookbook.
#[derive(Debug)]
struct Block {
    lang: String,
    /// Its first line, a comment, without the comment marker.
    label: String,
    code: String,
}

/// The `sql`, `python` and `sh` blocks of the README's section "Reading with DuckDB, polars
/// and jq", in order.
fn cookbook() -> Vec<Block> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("### Reading with DuckDB, polars and jq\n")
        .expect("the README has the cookbook section");
    let section = &readme[start..];
    let end = section[4..]
        .find("\n## ")
        .into_iter()
        .chain(section[4..].find("\n### "))
        .min()
        .map_or(section.len(), |e| e + 4);
    let mut blocks = Vec::new();
    let mut lines = section[..end].lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) else {
            continue;
        };
        let mut code = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            code.push_str(l);
            code.push('\n');
        }
        if !["sql", "python", "sh"].contains(&lang) {
            continue;
        }
        let first = code.lines().next().unwrap_or_default();
        let label = first
            .strip_prefix("-- ")
            .or_else(|| first.strip_prefix("# "))
            .unwrap_or_else(|| panic!("a cookbook block starts with a comment naming it: {code}"));
        blocks.push(Block {
            lang: lang.to_owned(),
            label: label.to_owned(),
            code,
        });
    }
    blocks
}

/// Runs a SQL or Python block and prints its result as JSON after a marker: the SQL's rows, or
/// the rows of the Python block's `df`; timestamps as integer nanoseconds (Python's datetime
/// has microseconds only).
const HARNESS: &str = r#"
import json, sys
import duckdb, polars as pl

kind, path = sys.argv[1], sys.argv[2]
src = open(path).read()
if kind == "sql":
    con = duckdb.connect()
    con.sql(src).create("result")
    cols = con.sql("DESCRIBE result").fetchall()
    sel = ", ".join(
        f'epoch_ns("{c}") AS "{c}"' if t.startswith("TIMESTAMP") else f'"{c}"' for c, t, *_ in cols
    )
    names = [c for c, *_ in cols]
    rows = con.sql(f"SELECT {sel} FROM result").fetchall()
else:
    scope = {"__name__": "__main__"}
    exec(compile(src, path, "exec"), scope)
    df = scope["df"].with_columns(pl.col(pl.Datetime).dt.epoch("ns"))
    names, rows = df.columns, df.rows()
print("=====RESULT=====")
print(json.dumps({"columns": names, "rows": [list(r) for r in rows]}, default=str))
"#;

/// The result of a block: column names and rows.
#[derive(Debug)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    fn col(&self, name: &str) -> Vec<&Value> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns));
        self.rows.iter().map(|r| &r[i]).collect()
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        self.col(name)
            .into_iter()
            .map(|v| v.as_i64().unwrap_or_else(|| panic!("{name}: {v}")))
            .collect()
    }

    fn strs(&self, name: &str) -> Vec<String> {
        self.col(name)
            .into_iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{name}: {v}"))
                    .to_owned()
            })
            .collect()
    }
}

fn run_table(py: &Python, work: &Path, block: &Block) -> Table {
    let path = work.join("block.txt");
    std::fs::write(&path, &block.code).unwrap();
    let harness = work.join("harness.py");
    std::fs::write(&harness, HARNESS).unwrap();
    let o = py
        .command()
        .arg(&harness)
        .arg(&block.lang)
        .arg(&path)
        .current_dir(work)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}: {}\n{out}", block.label, stderr(&o));
    let json = out
        .split_once("=====RESULT=====\n")
        .unwrap_or_else(|| panic!("{}: no result in {out}", block.label))
        .1;
    let v: Value = serde_json::from_str(json).unwrap();
    Table {
        columns: serde_json::from_value(v["columns"].clone()).unwrap(),
        rows: serde_json::from_value(v["rows"].clone()).unwrap(),
    }
}

/// Runs a shell block in `work` with the wsrec binary first on PATH; its stdout.
fn run_sh(work: &Path, block: &Block) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_wsrec")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_owned()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block.code])
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .current_dir(work)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", block.label, stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// What the test recording holds, from its lines (never from the export).
struct Truth {
    /// Every record line, as `wsrec cat` prints them.
    lines: Vec<String>,
    /// (stream, ts, msg) of every message.
    messages: Vec<(String, i64, String)>,
}

impl Truth {
    fn of(stream: &str, m: &[(String, i64, String)]) -> Vec<(i64, String)> {
        m.iter()
            .filter(|x| x.0 == stream)
            .map(|x| (x.1, x.2.clone()))
            .collect()
    }

    fn sorted_ts(&self, stream: Option<&str>) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .messages
            .iter()
            .filter(|m| stream.is_none_or(|s| m.0 == s))
            .map(|m| m.1)
            .collect();
        t.sort_unstable();
        t
    }
}

/// `data.E` of Binance depth frames, sorted (frames received in one read share a `ts`, so an
/// `ORDER BY ts` may list them in any order).
fn sorted_event_times(frames: &[String]) -> Vec<i64> {
    let mut e: Vec<i64> = frames
        .iter()
        .map(|f| {
            serde_json::from_str::<Value>(f).unwrap()["data"]["E"]
                .as_i64()
                .unwrap()
        })
        .collect();
    e.sort_unstable();
    e
}

#[tokio::test(start_paused = true)]
async fn every_cookbook_query_in_the_readme_runs_and_gives_the_recording() {
    let blocks = cookbook();
    let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    assert!(labels.len() >= 10, "{labels:?}");
    let Some(py) = python() else { return };
    let jq = has_jq();

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    record_two_streams(&data).await;
    let (binance, bybit) = frames();
    let d = data.to_str().unwrap();
    let lines = cat_lines(&[d]);
    let messages: Vec<(String, i64, String)> = cat_lines(&[d])
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v.get("seq")?;
            let key = ",\"msg\":";
            let at = l.find(key).unwrap();
            Some((
                v["stream"].as_str().unwrap().to_owned(),
                line_ts(l),
                l[at + key.len()..l.len() - 1].to_owned(),
            ))
        })
        .collect();
    let truth = Truth { lines, messages };
    // The recording is what was sent.
    let sent_binance: Vec<String> = Truth::of("binance", &truth.messages)
        .into_iter()
        .map(|m| m.1)
        .collect();
    assert_eq!(sent_binance, binance);
    assert_eq!(Truth::of("bybit", &truth.messages).len(), bybit.len());
    assert!(
        files(&data)
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".zst")),
        "the recording has compressed files"
    );

    // What the cookbook says fails without it: the type guessing of both readers.
    let claim = |code: &str, says: &[&str]| {
        let o = py
            .command()
            .args(["-c", code])
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{code} did not fail");
        assert!(
            says.iter().any(|s| stderr(&o).contains(s)),
            "{code}: {}",
            stderr(&o)
        );
    };
    claim(
        "import duckdb; duckdb.sql(\"SELECT * FROM read_json('data/**/*.jsonl*')\").fetchall()",
        &["Duplicate name \"E\" in struct"],
    );
    claim(
        "import polars as pl; pl.scan_ndjson('data/**/*.jsonl*').collect()",
        &[
            "failed to determine supertype of struct",
            "expected dtype 'struct",
        ],
    );

    let mut checked = Vec::new();
    for block in &blocks {
        let label = block.label.as_str();
        if block.code.contains("jq ") && !jq {
            continue;
        }
        let first_last = |stream: &str| {
            let t = truth.sorted_ts(Some(stream));
            (t[0], t[t.len() - 1])
        };
        match block.lang.as_str() {
            "sh" => {
                let out = run_sh(work.path(), block);
                match label {
                    "export the recording" => {
                        assert!(
                            out.contains(&format!("{} rows", truth.lines.len())),
                            "{out}"
                        );
                        assert!(work.path().join("data.parquet").is_file());
                    }
                    "jq: symbol and event time of the Binance depth updates" => {
                        let got: Vec<Value> = out
                            .lines()
                            .map(|l| serde_json::from_str(l).unwrap())
                            .collect();
                        let want: Vec<Value> = binance
                            .iter()
                            .map(|f| {
                                let v: Value = serde_json::from_str(f).unwrap();
                                serde_json::json!({"s": v["data"]["s"], "E": v["data"]["E"]})
                            })
                            .collect();
                        assert_eq!(got, want);
                    }
                    "jq 1.6: every record's ts, exact" => {
                        let got: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
                        let want: Vec<i64> = truth.lines.iter().map(|l| line_ts(l)).collect();
                        assert_eq!(got, want);
                    }
                    _ => panic!("no check for the cookbook block `{label}`: add one here"),
                }
            }
            _ => {
                let t = run_table(&py, work.path(), block);
                match label {
                    "messages and bytes per stream" => {
                        assert_eq!(t.strs("stream"), ["binance", "bybit"]);
                        assert_eq!(
                            t.ints("messages"),
                            [binance.len() as i64, bybit.len() as i64]
                        );
                        let bytes = |f: &[String]| f.iter().map(|m| m.len() as i64).sum::<i64>();
                        assert_eq!(t.ints("bytes"), [bytes(&binance), bytes(&bybit)]);
                        let (f0, l0) = first_last("binance");
                        let (f1, l1) = first_last("bybit");
                        assert_eq!(t.ints("first"), [f0, f1]);
                        assert_eq!(t.ints("last"), [l0, l1]);
                    }
                    "Binance depth updates: event type e, event time E, first and last update id U, u" =>
                    {
                        assert_eq!(t.rows.len(), binance.len());
                        assert!(t.strs("event_type").iter().all(|e| e == "depthUpdate"));
                        let mut got = t.ints("event_time");
                        got.sort_unstable();
                        assert_eq!(got, sorted_event_times(&binance));
                        assert_eq!(t.ints("ts"), truth.sorted_ts(Some("binance")));
                        let mut u: Vec<(i64, i64)> = t
                            .ints("first_id")
                            .into_iter()
                            .zip(t.ints("last_id"))
                            .collect();
                        u.sort_unstable();
                        let mut want: Vec<(i64, i64)> = binance
                            .iter()
                            .map(|f| {
                                let v: Value = serde_json::from_str(f).unwrap();
                                (
                                    v["data"]["U"].as_i64().unwrap(),
                                    v["data"]["u"].as_i64().unwrap(),
                                )
                            })
                            .collect();
                        want.sort_unstable();
                        assert_eq!(u, want);
                    }
                    "every disconnect, with its reason" => {
                        let mut streams = t.strs("stream");
                        streams.sort();
                        assert_eq!(streams, ["binance", "bybit"]);
                        assert_eq!(t.strs("reason"), ["shutdown", "shutdown"]);
                        assert_eq!(t.ints("conn"), [1, 1]);
                        assert_eq!(t.ints("duration_ms").len(), 2);
                    }
                    "polars: messages per stream, and the first receive time" => {
                        assert_eq!(t.strs("stream"), ["binance", "bybit"]);
                        assert_eq!(
                            t.ints("messages"),
                            [binance.len() as i64, bybit.len() as i64]
                        );
                        assert_eq!(
                            t.ints("first"),
                            [first_last("binance").0, first_last("bybit").0]
                        );
                    }
                    "polars, lazily: only the Binance depth updates, with their event time" => {
                        assert_eq!(t.ints("seq"), (0..binance.len() as i64).collect::<Vec<_>>());
                        let want: Vec<i64> = binance
                            .iter()
                            .map(|f| {
                                serde_json::from_str::<Value>(f).unwrap()["data"]["E"]
                                    .as_i64()
                                    .unwrap()
                            })
                            .collect();
                        assert_eq!(t.ints("E"), want);
                        let ts: Vec<i64> = Truth::of("binance", &truth.messages)
                            .iter()
                            .map(|m| m.0)
                            .collect();
                        assert_eq!(t.ints("ts"), ts);
                    }
                    "straight from the JSONL files (msg re-serialised)" => {
                        assert_eq!(t.ints("ts"), truth.sorted_ts(None));
                        assert_eq!(t.rows.len(), binance.len() + bybit.len());
                        let mut symbols: Vec<String> = t
                            .col("symbol")
                            .into_iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect();
                        symbols.sort();
                        let mut want: Vec<String> = binance
                            .iter()
                            .map(|f| {
                                serde_json::from_str::<Value>(f).unwrap()["data"]["s"]
                                    .as_str()
                                    .unwrap()
                                    .to_owned()
                            })
                            .collect();
                        want.sort();
                        assert_eq!(symbols, want);
                    }
                    "polars straight from the JSONL files (msg re-serialised)" => {
                        assert_eq!(t.ints("ts"), truth.sorted_ts(None));
                        // The same messages, but not the same text.
                        let mut got: Vec<Value> = t
                            .strs("msg")
                            .iter()
                            .map(|m| serde_json::from_str(m).unwrap())
                            .collect();
                        let mut want: Vec<Value> = truth
                            .messages
                            .iter()
                            .map(|m| serde_json::from_str(&m.2).unwrap())
                            .collect();
                        let key = |v: &Value| v.to_string();
                        got.sort_by_key(key);
                        want.sort_by_key(key);
                        assert_eq!(got, want);
                    }
                    _ => panic!("no check for the cookbook block `{label}`: add one here"),
                }
            }
        }
        checked.push(label);
    }
    let expected = if jq { 10 } else { 8 };
    assert_eq!(checked.len(), expected, "{checked:?}");
}

/// Ctrl-C (SIGINT) during an export: the export stops at its next record, removes its hidden
/// temporary and says so, with a non-zero exit; no output file appears. The recording is a FIFO
/// that the test writes, so the signal certainly arrives mid-export: the export has created its
/// temporary and installed its handler before it opens its input, and the test's open of the
/// FIFO for writing returns only once the export has opened it for reading.
#[test]
fn an_interrupted_export_leaves_no_file_behind() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("s-20261124T100000Z.jsonl");
    let status = Command::new("mkfifo").arg(&input).status().unwrap();
    assert!(status.success(), "mkfifo failed");
    let out = dir.path().join("out.parquet");
    let mut child = wsrec()
        .arg("export")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = |seq: u64| {
        format!(
            "{{\"ts\":{},\"stream\":\"s\",\"conn\":1,\"seq\":{seq},\"msg\":{{\"p\":1}}}}\n",
            1_795_517_990_000_000_000u64 + seq
        )
    };
    let mut fifo = open_fifo_writer(&input, &mut child);
    for seq in 0..100 {
        fifo.write_all(line(seq).as_bytes()).unwrap();
    }
    assert_eq!(hidden_files(dir.path()).len(), 1, "the export's temporary");
    // SAFETY: kill only sends a signal to the child started above.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    // The export is at a record or waiting for the next one: give it one, then the end (a
    // write error means it is gone already, which the checks below explain).
    let _ = fifo.write_all(line(100).as_bytes());
    drop(fifo);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "an interrupted export succeeded: {err}"
    );
    assert!(err.contains("interrupted"), "{err}");
    assert!(!out.exists(), "an output file after the interruption");
    assert_eq!(hidden_files(dir.path()), Vec::<PathBuf>::new(), "{err}");
}

/// Opens the FIFO `path` for writing once `reader` has opened it for reading; fails the test
/// (instead of blocking forever) if `reader` exits first or does not open it within a minute.
fn open_fifo_writer(path: &Path, reader: &mut std::process::Child) -> std::fs::File {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        // Non-blocking, an open for writing fails with ENXIO while no reader has it open.
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => {
                // Writes block again from here on.
                // SAFETY: F_SETFL with no flags on a descriptor this function owns.
                assert_eq!(unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) }, 0);
                return f;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
        if let Some(status) = reader.try_wait().unwrap() {
            panic!(
                "the reader exited ({status}) before it opened {}",
                path.display()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} not opened for reading within a minute",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A temporary left by an export killed with SIGKILL (which no handler sees) is removed by the
/// next export to the same output, which says so.
#[test]
fn the_next_export_removes_what_a_killed_one_left() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s-20261124T100000Z.jsonl");
    std::fs::write(
        &data,
        "{\"ts\":1795517990000000000,\"stream\":\"s\",\"conn\":1,\"seq\":0,\"msg\":{\"p\":1}}\n",
    )
    .unwrap();
    let out = dir.path().join("out.parquet");
    let gone = ended_process();
    let stale = dir.path().join(format!(".out.parquet.{gone}.tmp"));
    std::fs::write(&stale, b"PAR1 half written").unwrap();
    let o = export(&[data.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!stale.exists());
    assert!(
        stderr(&o).contains(&format!("process {gone}")),
        "{}",
        stderr(&o)
    );
    assert!(out.exists());
    assert_eq!(hidden_files(dir.path()), Vec::<PathBuf>::new());
}
