//! `wsrec replay`: a WebSocket server that plays a recording to every client that connects,
//! each from the start: the messages exactly as recorded (text as text, binary as binary), at
//! the original pace, `--speed N` times faster, or as fast as the client reads; optionally in a
//! loop. `ws://HOST:PORT/` plays every stream merged by receive time, `ws://HOST:PORT/<stream>`
//! one stream. At the end the server closes the connection (code 1000, `end of recording`).
//!
//! Snapshot lines (REST order-book snapshots the recorder fetched) are not played: they never
//! were WebSocket messages. They are counted, and when a client's playback ends the count is
//! said on stderr and in the log.
//!
//! What is played comes from a [`Source`]: files on disk ([`FileSource`], read on a thread per
//! client, so a long recording takes constant memory) or frames in memory ([`MemorySource`],
//! used by `wsrec demo`). [`serve`] takes its listener and shutdown token from the caller, so
//! tests bind `127.0.0.1:0` and drive it in-process with paused time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Filter, LineKind, UsageError, find_files};
use crate::read::{Entry, Item, Order, Payload, RecordingFile, Scan};

/// Frames buffered between a client's reader thread and its socket.
const FRAME_BUFFER: usize = 1024;
/// How long a client gets to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How fast to play.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// The recorded gaps between messages divided by this factor (1 = original pace).
    Factor(f64),
    /// No waiting at all.
    Max,
}

/// How to play.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlayOptions {
    /// Pace.
    pub speed: Speed,
    /// Start over at the end instead of closing.
    pub looping: bool,
}

/// One message to play.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Its receive time (ns): only differences matter.
    pub ts: u64,
    /// The message, as it goes out.
    pub message: Message,
}

/// Frames in play order, and what was passed over on the way.
pub trait Frames: Iterator<Item = Frame> + Send {
    /// Snapshot lines passed over so far (never played: they are not WebSocket messages).
    fn snapshots_skipped(&self) -> u64 {
        0
    }
}

/// Something to play: frames in receive order, for all streams or one.
pub trait Source: Send + Sync + 'static {
    /// The stream names clients may ask for.
    fn streams(&self) -> Vec<String>;
    /// The frames of `stream` (every stream merged when `None`), in play order. Called on a
    /// thread of its own per client; may block.
    fn frames(&self, stream: Option<&str>) -> Box<dyn Frames>;
}

/// A recording on disk.
#[derive(Debug)]
pub struct FileSource {
    files: Vec<RecordingFile>,
    filter: Filter,
    streams: Vec<String>,
}

impl FileSource {
    /// Plays `files` (merged by receive time), records passing `filter`.
    pub fn new(files: Vec<RecordingFile>, filter: Filter) -> Self {
        let mut streams: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let p = crate::read::probe(f);
                match p.stream {
                    Some(s) => Some(s),
                    None if p.raw => Some(f.name_hints().stream),
                    None => None,
                }
            })
            .filter(|s| filter.stream_ok(s))
            .collect();
        streams.sort();
        streams.dedup();
        Self {
            files,
            filter,
            streams,
        }
    }
}

impl Source for FileSource {
    fn streams(&self) -> Vec<String> {
        self.streams.clone()
    }

    fn frames(&self, stream: Option<&str>) -> Box<dyn Frames> {
        let mut filter = self.filter.clone();
        if let Some(s) = stream {
            filter.streams = vec![s.to_owned()];
        }
        let files = super::select_streams(self.files.clone(), &filter);
        Box::new(FileFrames {
            scan: Scan::new(files, Order::Merged),
            filter,
            last_ts: 0,
            snapshots: 0,
        })
    }
}

/// The frames of a [`Scan`], records that are not messages skipped.
struct FileFrames {
    scan: Scan,
    filter: Filter,
    last_ts: u64,
    /// Snapshot lines passed over.
    snapshots: u64,
}

impl Frames for FileFrames {
    fn snapshots_skipped(&self) -> u64 {
        self.snapshots
    }
}

impl Iterator for FileFrames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        loop {
            let item = self.scan.next_item()?;
            let Item::Line {
                format,
                info,
                bytes,
                raw_stream,
                raw_ts,
                file,
            } = item
            else {
                if let Item::Error(e) = item {
                    tracing::warn!(error = %e, "Replay skips the rest of a file.");
                }
                continue;
            };
            let m = match LineKind::of(file, format, &info, bytes) {
                LineKind::Raw => {
                    if !self.filter.stream_ok(raw_stream) {
                        continue;
                    }
                    let ts = raw_ts.unwrap_or(self.last_ts).max(self.last_ts);
                    self.last_ts = ts;
                    let message = match std::str::from_utf8(bytes) {
                        Ok(s) => Message::text(s.to_owned()),
                        Err(_) => Message::binary(bytes.to_vec()),
                    };
                    return Some(Frame { ts, message });
                }
                LineKind::Record(Entry::Message(m)) => m,
                LineKind::Record(Entry::Snapshot(sn)) => {
                    if self.filter.stream_ok(&sn.stream) && self.filter.time_ok(sn.ts) {
                        self.snapshots += 1;
                    }
                    continue;
                }
                _ => continue,
            };
            if !self.filter.stream_ok(&m.stream) || !self.filter.time_ok(m.ts) {
                continue;
            }
            self.last_ts = m.ts;
            let message = match m.payload {
                Payload::Json(s) => Message::text(s.to_owned()),
                Payload::Text(s) => Message::text(s.into_owned()),
                Payload::Binary(_) => match m.payload.bytes() {
                    Ok(b) => Message::binary(b.into_owned()),
                    Err(e) => {
                        tracing::warn!(file = %file.path.display(), line = info.number, error = %e, "Replay skips a `bin` that is not base64.");
                        continue;
                    }
                },
            };
            return Some(Frame { ts: m.ts, message });
        }
    }
}

/// Frames held in memory (the demo's embedded recording).
#[derive(Debug, Default)]
pub struct MemorySource {
    /// Per stream, in play order.
    streams: Vec<(String, Arc<[Frame]>)>,
    /// Every stream merged by time.
    all: Arc<[Frame]>,
}

impl MemorySource {
    /// A source of `streams`, each a name and its frames in play order.
    pub fn new(streams: Vec<(String, Vec<Frame>)>) -> Self {
        let mut all: Vec<Frame> = streams.iter().flat_map(|(_, f)| f.clone()).collect();
        all.sort_by_key(|f| f.ts);
        Self {
            streams: streams
                .into_iter()
                .map(|(n, f)| (n, Arc::from(f)))
                .collect(),
            all: Arc::from(all),
        }
    }
}

impl Source for MemorySource {
    fn streams(&self) -> Vec<String> {
        self.streams.iter().map(|(n, _)| n.clone()).collect()
    }

    fn frames(&self, stream: Option<&str>) -> Box<dyn Frames> {
        let frames = match stream {
            None => self.all.clone(),
            Some(s) => self
                .streams
                .iter()
                .find(|(n, _)| n == s)
                .map(|(_, f)| f.clone())
                .unwrap_or_else(|| Arc::from(Vec::new())),
        };
        Box::new(MemoryFrames { frames, next: 0 })
    }
}

/// A [`MemorySource`]'s frames, one after the other.
struct MemoryFrames {
    frames: Arc<[Frame]>,
    next: usize,
}

impl Iterator for MemoryFrames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        let f = self.frames.get(self.next)?.clone();
        self.next += 1;
        Some(f)
    }
}

impl Frames for MemoryFrames {}

/// What `wsrec replay` plays, where and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    /// Recording files or directories.
    pub paths: Vec<std::path::PathBuf>,
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Which records.
    pub filter: Filter,
    /// Pace and looping.
    pub play: PlayOptions,
}

/// The recording files `opts` asks for; checked before anything listens.
///
/// # Errors
/// Bad arguments (usage): an empty time range, no recordings, none of the wanted streams.
pub fn files(opts: &ReplayOptions) -> anyhow::Result<Vec<RecordingFile>> {
    let filter = &opts.filter;
    filter.validate()?;
    let files = super::select_streams(find_files(&opts.paths)?, filter);
    if files.is_empty() {
        return Err(UsageError(format!(
            "none of the recordings is of stream {}",
            filter.streams.join(", ")
        ))
        .into());
    }
    Ok(files)
}

/// Runs `wsrec replay` of `files` (from [`files`]) until Ctrl-C.
///
/// # Errors
/// The address cannot be listened on.
pub async fn run(files: Vec<RecordingFile>, opts: ReplayOptions) -> anyhow::Result<()> {
    let nfiles = files.len();
    let source = FileSource::new(files, opts.filter);
    let listen = opts.listen;
    let opts = opts.play;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is the port in use? pick another with --listen",
            listen
        )
    })?;
    let addr = listener.local_addr()?;
    let pace = match opts.speed {
        Speed::Max => "as fast as possible".to_owned(),
        Speed::Factor(1.0) => "at the original pace".to_owned(),
        Speed::Factor(k) => format!("at {k}x the original pace"),
    };
    super::to_stderr(&format!(
        "Replaying {nfiles} file(s) {pace}{} to every client of ws://{addr}/ (all streams merged) or ws://{addr}/<stream> ({}). Ctrl-C stops.",
        if opts.looping { ", in a loop," } else { "" },
        source.streams().join(", ")
    ));
    let shutdown = CancellationToken::new();
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_ctrl_c.cancel();
    });
    serve(listener, Arc::new(source), opts, shutdown).await;
    Ok(())
}

/// Serves `source` to every client of `listener` until `shutdown`, then closes every client
/// (code 1001) and returns.
pub async fn serve(
    listener: TcpListener,
    source: Arc<dyn Source>,
    opts: PlayOptions,
    shutdown: CancellationToken,
) {
    let clients = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                clients.spawn(client(tcp, peer, source.clone(), opts, shutdown.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot accept a replay client.");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    clients.close();
    clients.wait().await;
}

/// Why a client's playback ended early.
enum Stop {
    /// The client went away.
    Gone,
    /// The server is shutting down.
    Shutdown,
}

async fn client(
    tcp: TcpStream,
    peer: SocketAddr,
    source: Arc<dyn Source>,
    opts: PlayOptions,
    shutdown: CancellationToken,
) {
    let streams = source.streams();
    let mut wanted: Option<String> = None;
    // The callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path().trim_matches('/');
        if path.is_empty() {
            return Ok(resp);
        }
        if streams.iter().any(|s| s == path) {
            wanted = Some(path.to_owned());
            return Ok(resp);
        }
        let mut err = ErrorResponse::new(Some(format!(
            "no stream `{path}` in this recording; use / for all or one of: {}\n",
            streams.join(", ")
        )));
        *err.status_mut() = StatusCode::NOT_FOUND;
        Err(err)
    };
    let ws = match tokio_tungstenite::accept_hdr_async(tcp, callback).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "Replay handshake failed.");
            return;
        }
    };
    tracing::info!(%peer, stream = wanted.as_deref().unwrap_or("(all)"), "Replay client connected.");
    let (mut sink, mut incoming) = ws.split();
    // Reading answers pings and notices the client leaving.
    let gone = CancellationToken::new();
    let reader = tokio::spawn({
        let gone = gone.clone();
        async move {
            while let Some(Ok(m)) = incoming.next().await {
                if m.is_close() {
                    break;
                }
            }
            gone.cancel();
        }
    });
    let mut snapshots = 0;
    let stop = play(
        &mut sink,
        &source,
        wanted.as_deref(),
        opts,
        (&gone, &shutdown),
        &mut snapshots,
    )
    .await;
    let close = match stop {
        Ok(()) => Some((CloseCode::Normal, "end of recording")),
        Err(Stop::Shutdown) => Some((CloseCode::Away, "replay server stopping")),
        Err(Stop::Gone) => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if sink.send(Message::Close(Some(frame))).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_WAIT, gone.cancelled()).await;
        }
    }
    reader.abort();
    tracing::info!(%peer, snapshots_skipped = snapshots, "Replay client done.");
    if snapshots > 0 {
        super::to_stderr(&format!(
            "wsrec replay: client {peer}: skipped {snapshots} snapshot line(s): REST order-book snapshots the recorder fetched are not WebSocket messages and are not sent (`wsrec cat` shows them)"
        ));
    }
}

/// Plays the source to one client; `Ok` when everything was sent. `(gone, shutdown)`: the client
/// left, the server stops. Adds the snapshot lines passed over (of every pass read to its end)
/// to `snapshots`.
async fn play<S>(
    sink: &mut S,
    source: &Arc<dyn Source>,
    stream: Option<&str>,
    opts: PlayOptions,
    (gone, shutdown): (&CancellationToken, &CancellationToken),
    snapshots: &mut u64,
) -> Result<(), Stop>
where
    S: futures::Sink<Message> + Unpin,
{
    loop {
        let (tx, mut rx) = mpsc::channel::<Frame>(FRAME_BUFFER);
        // Sent before `tx` is dropped: there once the frames run out.
        let (skipped_tx, skipped_rx) = tokio::sync::oneshot::channel::<u64>();
        let src = source.clone();
        let want = stream.map(str::to_owned);
        // A plain thread (not the blocking pool): it may wait on a full channel for as long as
        // the playback lasts, and tokio's paused test clock must not wait for it.
        let spawned = std::thread::Builder::new()
            .name("wsrec-replay".to_owned())
            .spawn(move || {
                let mut frames = src.frames(want.as_deref());
                for f in &mut frames {
                    if tx.blocking_send(f).is_err() {
                        return;
                    }
                }
                let _ = skipped_tx.send(frames.snapshots_skipped());
                drop(tx);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "Cannot start a replay reader thread.");
            return Err(Stop::Gone);
        }
        let mut origin: Option<(u64, Instant)> = None;
        let mut sent = 0u64;
        loop {
            let frame = match rx.try_recv() {
                Ok(f) => f,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    sink.flush().await.map_err(|_| Stop::Gone)?;
                    tokio::select! {
                        f = rx.recv() => match f {
                            Some(f) => f,
                            None => break,
                        },
                        () = gone.cancelled() => return Err(Stop::Gone),
                        () = shutdown.cancelled() => return Err(Stop::Shutdown),
                    }
                }
            };
            if let Speed::Factor(k) = opts.speed {
                let (t0, i0) = *origin.get_or_insert((frame.ts, Instant::now()));
                let offset = frame.ts.saturating_sub(t0) as f64 / k;
                let at = i0 + Duration::from_nanos(offset as u64);
                if at > Instant::now() {
                    sink.flush().await.map_err(|_| Stop::Gone)?;
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = gone.cancelled() => return Err(Stop::Gone),
                        () = shutdown.cancelled() => return Err(Stop::Shutdown),
                    }
                }
            }
            if shutdown.is_cancelled() {
                return Err(Stop::Shutdown);
            }
            sink.feed(frame.message).await.map_err(|_| Stop::Gone)?;
            sent += 1;
        }
        *snapshots += skipped_rx.await.unwrap_or(0);
        sink.flush().await.map_err(|_| Stop::Gone)?;
        if !opts.looping || sent == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_source_plays_one_stream_or_all_in_time_order() {
        let f = |ts: u64, t: &str| Frame {
            ts,
            message: Message::text(t.to_owned()),
        };
        let src = MemorySource::new(vec![
            ("a".into(), vec![f(1, "a1"), f(5, "a2")]),
            ("b".into(), vec![f(3, "b1")]),
        ]);
        let ts: Vec<u64> = src.frames(None).map(|f| f.ts).collect();
        assert_eq!(ts, [1, 3, 5]);
        assert_eq!(src.frames(Some("b")).count(), 1);
        assert_eq!(src.frames(Some("zz")).count(), 0);
        assert_eq!(src.streams(), ["a", "b"]);
    }
}
