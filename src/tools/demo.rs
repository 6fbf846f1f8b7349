//! `wsrec demo`: the first thing to run. Real exchange frames embedded in the binary
//! (`assets/demo/`, see its `SOURCES.md`) are served by an in-process [`replay`]
//! server on `127.0.0.1`, one path per venue, at the pace they were received; a real
//! [`Recorder`] records them through the whole pipeline (connections, queue, writer, disk,
//! compression) into `./wsrec-demo/` for a few seconds; then the demo prints the `stats` of
//! what it wrote and the commands to look further. No network needed.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::replay::{self, Frame, MemorySource, PlayOptions, Speed};
use super::summary::{self, StatsReport};
use super::{Filter, Progress};
use crate::read::discover;
use crate::{Recorder, StreamConfig};

/// The embedded streams: name (also the server path) and frames, one per line.
pub const STREAMS: [(&str, &str); 3] = [
    (
        "bybit-linear",
        include_str!("../../assets/demo/bybit-linear.jsonl"),
    ),
    (
        "binance-usdm",
        include_str!("../../assets/demo/binance-usdm.jsonl"),
    ),
    ("okx", include_str!("../../assets/demo/okx.jsonl")),
];

/// The acknowledgment the frames' licence (XFree86-1.1) asks for.
pub const CREDIT: &str = "The demo frames are real exchange data from bmoscon/cryptofeed's sample_data (licence XFree86-1.1, see assets/demo/SOURCES.md). This product includes software developed by Bryant Moscon (http://www.bryantmoscon.com/).";

/// The exchange's own time of a frame (ns): Bybit `ts` (ms), Binance `data.E` (ms), OKX
/// `data[0].ts` (ms, a string). `None` for a frame without one (an OKX subscribe ack).
pub fn exchange_time_ns(frame: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(frame).ok()?;
    let data = v.get("data");
    let ms = v
        .get("ts")
        .and_then(serde_json::Value::as_u64)
        .or_else(|| data?.get("E")?.as_u64())
        .or_else(|| data?.get(0)?.get("ts")?.as_str()?.parse().ok())?;
    ms.checked_mul(1_000_000)
}

/// The frames of one embedded stream, timed by the exchange's clock. A frame without a time
/// (or one earlier than the frame before) plays right after the previous one; frames without a
/// time before the first timed one (OKX's subscribe acks) play with it.
pub fn frames(text: &str) -> Vec<Frame> {
    let mut last = text.lines().find_map(exchange_time_ns).unwrap_or(0);
    text.lines()
        .map(|line| {
            let ts = exchange_time_ns(line).unwrap_or(last).max(last);
            last = ts;
            Frame {
                ts,
                message: Message::text(line.to_owned()),
            }
        })
        .collect()
}

/// The embedded recording as a replay source.
pub fn source() -> MemorySource {
    MemorySource::new(
        STREAMS
            .iter()
            .map(|(name, text)| ((*name).to_owned(), frames(text)))
            .collect(),
    )
}

/// What to do.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// How long to record.
    pub duration: Duration,
    /// Where.
    pub output_dir: PathBuf,
}

/// What the demo recorded.
#[derive(Clone, Debug)]
pub struct DemoOutcome {
    /// The address the demo server listened on.
    pub server: std::net::SocketAddr,
    /// Files this run wrote (earlier runs' files in the same directory are left alone).
    pub files: Vec<PathBuf>,
    /// Their figures.
    pub stats: StatsReport,
}

/// Serves the embedded frames and records them for `opts.duration`.
///
/// # Errors
/// The output directory cannot be used, or the recorder did not stop cleanly.
pub async fn record(opts: &DemoOptions) -> anyhow::Result<DemoOutcome> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1 for the demo feed")?;
    let server = listener.local_addr()?;
    let stop_server = CancellationToken::new();
    let serving = tokio::spawn(replay::serve(
        listener,
        std::sync::Arc::new(source()),
        PlayOptions {
            speed: Speed::Factor(1.0),
            looping: false,
        },
        stop_server.clone(),
    ));

    let before = existing(&opts.output_dir);
    let mut builder = Recorder::builder().output_dir(&opts.output_dir);
    for (name, _) in STREAMS {
        builder = builder.stream(StreamConfig::new(name, format!("ws://{server}/{name}")));
    }
    let recorder = builder.build()?;
    let stop = CancellationToken::new();
    let mut recording = tokio::spawn(recorder.run(stop.clone()));
    // A recorder that cannot start (output directory) returns at once: say so at once.
    let early = tokio::select! {
        r = &mut recording => Some(r),
        () = tokio::time::sleep(opts.duration) => None,
    };
    let ran = early.is_none();
    let result = match early {
        Some(r) => r,
        None => {
            stop.cancel();
            recording.await
        }
    }
    .context("the recorder task failed")?;
    stop_server.cancel();
    let _ = serving.await;
    result.context(if ran {
        "the recorder did not stop cleanly"
    } else {
        "the recorder could not start"
    })?;

    let files: Vec<PathBuf> = existing(&opts.output_dir)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    let recorded = discover(&files).unwrap_or_default();
    let stats = summary::compute(recorded, &Filter::default(), &mut Progress::new(0, false));
    Ok(DemoOutcome {
        server,
        files,
        stats,
    })
}

/// The recording files under `dir` now.
fn existing(dir: &Path) -> BTreeSet<PathBuf> {
    if !dir.exists() {
        return BTreeSet::new();
    }
    discover(&[dir.to_owned()])
        .map(|files| files.into_iter().map(|f| f.path).collect())
        .unwrap_or_default()
}

/// How the user runs wsrec, for the commands the demo prints: `cargo run --release --` when
/// cargo started this process, else `wsrec` (an installed binary). `cargo` is the value of the
/// `CARGO` environment variable, which `cargo run` sets for the program it starts. Where the
/// executable lies says nothing about how it was started: a release binary run from
/// `target/release/` or copied out of it is not run by cargo.
fn program(cargo: Option<&std::ffi::OsStr>) -> &'static str {
    if cargo.is_some_and(|c| !c.is_empty()) {
        "cargo run --release --"
    } else {
        "wsrec"
    }
}

/// Runs `wsrec demo`, recording on `runtime`.
///
/// # Errors
/// The output directory cannot be used, or the recorder failed.
pub fn run(opts: &DemoOptions, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let frames: usize = STREAMS.iter().map(|(_, t)| t.lines().count()).sum();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wsrec demo: serving {frames} real exchange frames ({}) on 127.0.0.1 at the pace they were received,\nand recording them for {} into {} with the full recorder pipeline. No network needed.\n",
        STREAMS.map(|(n, _)| n).join(", "),
        humantime::format_duration(opts.duration),
        opts.output_dir.display()
    )?;
    out.flush()?;
    let outcome = runtime.block_on(record(opts))?;
    write!(out, "{}", summary::render_table(&outcome.stats))?;
    let messages: u64 = outcome.stats.streams.iter().map(|s| s.total.messages).sum();
    let dir = opts.output_dir.display();
    let p = program(std::env::var_os("CARGO").as_deref());
    writeln!(
        out,
        "\nRecorded {messages} messages into {} file(s) under {dir}. Look at them with:\n  \
         {p} cat --merge {dir} | head\n  \
         {p} cat --msg --stream bybit-linear {dir} | head -3\n  \
         {p} verify {dir}\n  \
         {p} stats {dir}\n  \
         {p} replay {dir} --listen 127.0.0.1:9000 --speed 10\n",
        outcome.files.len()
    )?;
    writeln!(out, "{CREDIT}")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_frame_is_a_corpus_frame_and_has_a_time() {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus");
        let mut known = BTreeSet::new();
        for entry in std::fs::read_dir(corpus).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                for l in std::fs::read_to_string(&p).unwrap().lines() {
                    known.insert(l.to_owned());
                }
            }
        }
        for (name, text) in STREAMS {
            assert!(text.lines().count() > 100, "{name}");
            // Frames without a time (OKX's subscribe acks) only before the first timed one.
            let untimed = text
                .lines()
                .take_while(|l| exchange_time_ns(l).is_none())
                .count();
            for (i, line) in text.lines().enumerate() {
                assert!(known.contains(line), "{name}:{}: not a corpus frame", i + 1);
                assert!(
                    i < untimed || exchange_time_ns(line).is_some(),
                    "{name}:{}: no time",
                    i + 1
                );
            }
            let f = frames(text);
            let span = f.last().unwrap().ts - f[0].ts;
            assert!(
                (3_000_000_000..=11_000_000_000).contains(&span),
                "{name}: plays for {span} ns"
            );
        }
    }

    /// The OKX corpus files merged by the exchange's time, as `assets/demo/SOURCES.md` says:
    /// each file keeps its own order; at each step the file whose next frame is earliest goes
    /// (a frame without a time counts as the time of the frame before it in its file, or as
    /// earliest of all at the file's start; the first file on ties).
    fn okx_corpus_merged() -> Vec<(u64, &'static str)> {
        let files = [
            include_str!("../../tests/fixtures/corpus/okx_other.jsonl"),
            include_str!("../../tests/fixtures/corpus/okx_trades.jsonl"),
            include_str!("../../tests/fixtures/corpus/okx_books.jsonl"),
        ];
        let keyed: Vec<Vec<(u64, &str)>> = files
            .iter()
            .map(|text| {
                let mut last = 0;
                text.lines()
                    .map(|l| {
                        last = exchange_time_ns(l).unwrap_or(last);
                        (last, l)
                    })
                    .collect()
            })
            .collect();
        let mut next = vec![0; files.len()];
        let mut merged = Vec::new();
        while let Some(f) = (0..files.len())
            .filter(|&f| next[f] < keyed[f].len())
            .min_by_key(|&f| keyed[f][next[f]].0)
        {
            merged.push(keyed[f][next[f]]);
            next[f] += 1;
        }
        merged
    }

    #[test]
    fn the_okx_stream_is_the_documented_selection_of_the_merged_corpus() {
        let merged = okx_corpus_merged();
        // The subscribe acks, then from the first book snapshot to the last frame before the
        // first one more than 3.5 s after it.
        let acks = merged.iter().take_while(|(t, _)| *t == 0);
        let first = merged
            .iter()
            .position(|(_, l)| l.contains(r#""action":"snapshot""#))
            .unwrap();
        let t0 = merged[first].0;
        let books = merged[first..]
            .iter()
            .take_while(|(t, _)| *t <= t0 + 3_500_000_000);
        let want: String = acks.chain(books).map(|(_, l)| format!("{l}\n")).collect();
        let okx = STREAMS.iter().find(|(n, _)| *n == "okx").unwrap().1;
        assert_eq!(okx, want);
        assert!(okx.len() < 120_000, "{}", okx.len());
        // Every book's snapshot is in it, before that book's first update.
        for inst in ["BTC-USD-220527", "UNI-USD-SWAP", "BTC-USDT"] {
            let arg = format!(r#"{{"arg":{{"channel":"books","instId":"{inst}"}},"action":"#);
            let first = okx.lines().find(|l| l.starts_with(&arg)).unwrap();
            assert!(first.contains(r#""action":"snapshot""#), "{inst}");
        }
    }

    #[test]
    fn frames_without_a_time_before_the_first_play_with_it() {
        let text = concat!(
            r#"{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}"#,
            "\n",
            r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"data":[{"ts":"1652459225381"}]}"#,
            "\n",
            r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}"#,
            "\n",
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"ts":"1652459225000"}]}"#,
            "\n",
            r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"ts":"1652459226381"}]}"#,
        );
        let ts: Vec<u64> = frames(text).iter().map(|f| f.ts).collect();
        let t = 1_652_459_225_381_000_000;
        assert_eq!(ts, [t, t, t, t, t + 1_000_000_000]);
    }

    #[test]
    fn exchange_times() {
        assert_eq!(
            exchange_time_ns(r#"{"topic":"x","ts":1786310818129,"data":[{"a":1}]}"#),
            Some(1_786_310_818_129_000_000)
        );
        assert_eq!(
            exchange_time_ns(r#"{"topic":"x","ts":1786310818129,"data":{"s":"BTCUSDT"}}"#),
            Some(1_786_310_818_129_000_000)
        );
        assert_eq!(
            exchange_time_ns(r#"{"stream":"x","data":{"e":"aggTrade","E":1626992741575}}"#),
            Some(1_626_992_741_575_000_000)
        );
        assert_eq!(
            exchange_time_ns(
                r#"{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"px":"30236","ts":"1652459224818"},{"ts":"1652459224900"}]}"#
            ),
            Some(1_652_459_224_818_000_000)
        );
        assert_eq!(
            exchange_time_ns(r#"{"event":"subscribe","arg":{"channel":"books"}}"#),
            None
        );
        assert_eq!(exchange_time_ns(r#"{"data":[{"ts":"soon"}]}"#), None);
        assert_eq!(exchange_time_ns(r#"{"a":1}"#), None);
        assert_eq!(exchange_time_ns("nope"), None);
    }

    #[test]
    fn commands_name_cargo_only_when_cargo_started_the_demo() {
        let cargo = std::ffi::OsStr::new("/home/u/.cargo/bin/cargo");
        assert_eq!(program(Some(cargo)), "cargo run --release --");
        assert_eq!(program(None), "wsrec");
        assert_eq!(program(Some(std::ffi::OsStr::new(""))), "wsrec");
    }
}
