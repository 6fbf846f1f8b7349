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
    (
        "coinbase-advanced",
        include_str!("../../assets/demo/coinbase-advanced.jsonl"),
    ),
];

/// The acknowledgment the frames' licence (XFree86-1.1) asks for.
pub const CREDIT: &str = "The demo frames are real exchange data from bmoscon/cryptofeed's sample_data (licence XFree86-1.1, see assets/demo/SOURCES.md). This product includes software developed by Bryant Moscon (http://www.bryantmoscon.com/).";

/// The exchange's own time of a frame (ns): Bybit `ts` (ms), Binance `data.E` (ms),
/// Coinbase `timestamp` (RFC 3339).
pub fn exchange_time_ns(frame: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Times {
        ts: Option<u64>,
        data: Option<Data>,
        timestamp: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(rename = "E")]
        event_ms: Option<u64>,
    }
    // `data` is an object for Binance, an array for Bybit trades: ignore what does not fit.
    let t: Times = serde_json::from_str(frame)
        .or_else(|_| {
            #[derive(serde::Deserialize)]
            struct NoData {
                ts: Option<u64>,
                timestamp: Option<String>,
            }
            serde_json::from_str::<NoData>(frame).map(|n| Times {
                ts: n.ts,
                data: None,
                timestamp: n.timestamp,
            })
        })
        .ok()?;
    if let Some(ms) = t.ts.or(t.data.and_then(|d| d.event_ms)) {
        return ms.checked_mul(1_000_000);
    }
    let ts = chrono::DateTime::parse_from_rfc3339(&t.timestamp?).ok()?;
    u64::try_from(ts.timestamp_nanos_opt()?).ok()
}

/// The frames of one embedded stream, timed by the exchange's clock; a frame without a time
/// (or one earlier than the frame before) plays right after the previous one.
pub fn frames(text: &str) -> Vec<Frame> {
    let mut last = 0;
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

/// How the user runs wsrec: `cargo run --release --` from a checkout, else `wsrec`.
fn program() -> &'static str {
    let in_target =
        std::env::current_exe().is_ok_and(|p| p.components().any(|c| c.as_os_str() == "target"));
    if in_target {
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
    let p = program();
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
            for (i, line) in text.lines().enumerate() {
                assert!(known.contains(line), "{name}:{}: not a corpus frame", i + 1);
                assert!(
                    exchange_time_ns(line).is_some(),
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

    #[test]
    fn exchange_times() {
        assert_eq!(
            exchange_time_ns(r#"{"topic":"x","ts":1786310818129,"data":[{"a":1}]}"#),
            Some(1_786_310_818_129_000_000)
        );
        assert_eq!(
            exchange_time_ns(r#"{"stream":"x","data":{"e":"aggTrade","E":1626992741575}}"#),
            Some(1_626_992_741_575_000_000)
        );
        assert_eq!(
            exchange_time_ns(
                r#"{"channel":"l2_data","timestamp":"2026-08-09T21:05:48.628879425Z"}"#
            ),
            Some(1_786_309_548_628_879_425)
        );
        assert_eq!(exchange_time_ns(r#"{"a":1}"#), None);
        assert_eq!(exchange_time_ns("nope"), None);
    }
}
