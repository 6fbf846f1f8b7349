//! The flood server: one WebSocket connection on `127.0.0.1:0` that receives N pre-encoded text
//! frames as fast as the kernel takes them, then a close frame. For the reconnect workload it
//! serves several such blocks, one per connection, the client reconnecting after each close.
//! [`EndlessFlood`] is the same with no set N: it floods until it is told to end, encoding as it
//! goes (the stream flooded beside a spaced one).
//!
//! Frames are encoded before the recorder starts ([`Encoded`]), so during a run the server does
//! nothing but multi-MiB `write_all` calls and stays several times faster than any client (see
//! [`measure_ceiling`]). A second thread drains whatever the client sends (subscribes, pings,
//! pongs) and notes the instant the client's close reply arrives: that instant is when every
//! message has been consumed. Pings are answered: the drain thread queues the pong and the writer
//! sends it between two pieces (pieces are whole frames), so a recorder's pong timeout cannot
//! fire during a long run.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::payload::Payload;
use crate::ws;

/// Size of each `write_all` call (rounded up to whole frames).
const WRITE_CHUNK: usize = 4 << 20;
/// Size of each piece the endless flood encodes and writes (rounded up to whole frames): small
/// enough that [`EndlessFlood::end`] takes effect within a few ms of the client's reading, large
/// enough that the writer thread wakes rarely.
const ENDLESS_PIECE: usize = 1 << 20;
/// How often blocked reads and accepts look at the stop flag and the deadline.
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// Frames of one period are re-sent from one buffer when the payload cycles and N is larger than
/// this many periods' worth; otherwise everything is encoded flat.
const CYCLE_MIN_REPEATS: u64 = 2;

/// N frames (plus the final close frame) ready to be written as a list of byte ranges.
#[derive(Debug)]
pub struct Encoded {
    /// Backing buffers.
    bufs: Vec<Vec<u8>>,
    /// `(buffer index, byte range)` pieces in send order, each whole frames of about
    /// [`WRITE_CHUNK`] bytes, so that a pong can be slipped in between two of them.
    pieces: Vec<(usize, Range<usize>)>,
    /// Number of data frames.
    pub messages: u64,
    /// Payload bytes of the data frames.
    pub message_bytes: u64,
    /// Bytes on the wire, headers and close frame included.
    pub wire_bytes: u64,
}

/// Ranges of whole frames `0..frames` (frame `i` spans `offsets[i]..offsets[i + 1]`), cut into
/// pieces of at least [`WRITE_CHUNK`] bytes, the last possibly shorter.
fn frame_aligned(offsets: &[usize], frames: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &end) in offsets[..=frames].iter().enumerate().skip(1) {
        if end - start >= WRITE_CHUNK || i == frames {
            out.push(start..end);
            start = end;
        }
    }
    out
}

impl Encoded {
    /// Encodes messages `0..n` of `payload` as unmasked final text frames followed by a close
    /// frame with status 1000. A cycling payload is encoded once per period and referenced again.
    pub fn new(payload: &Payload, n: u64) -> Self {
        Self::range(payload, 0, n)
    }

    /// Like [`new`](Self::new) for messages `first..first + n` (one block of the reconnect
    /// workload). The cycle is reused only when `first` is a multiple of the period.
    pub fn range(payload: &Payload, first: u64, n: u64) -> Self {
        let mut msg = Vec::new();
        // Encodes frames `first..first + count` into one buffer; returns it with the frame
        // offsets.
        let mut encode = |count: u64| {
            let total: usize = (first..first + count)
                .map(|k| {
                    let len = payload.message_len(k);
                    ws::header_len(len, false) + len
                })
                .sum();
            let mut buf = Vec::with_capacity(total);
            let mut offsets = Vec::with_capacity(count as usize + 1);
            for k in first..first + count {
                offsets.push(buf.len());
                msg.clear();
                payload.write_message(k, &mut msg);
                ws::put_frame(&mut buf, ws::OP_TEXT, &msg, None);
            }
            offsets.push(buf.len());
            (buf, offsets)
        };
        let mut pieces = Vec::new();
        let (buf, offsets) = match payload.period() {
            Some(period) if n >= CYCLE_MIN_REPEATS * period && first.is_multiple_of(period) => {
                let (buf, offsets) = encode(period);
                let whole = frame_aligned(&offsets, period as usize);
                for _ in 0..n / period {
                    pieces.extend(whole.iter().map(|r| (0, r.clone())));
                }
                let rest = frame_aligned(&offsets, (n % period) as usize);
                pieces.extend(rest.into_iter().map(|r| (0, r)));
                (buf, offsets)
            }
            _ => {
                let (buf, offsets) = encode(n);
                pieces.extend(
                    frame_aligned(&offsets, n as usize)
                        .into_iter()
                        .map(|r| (0, r)),
                );
                (buf, offsets)
            }
        };
        drop(offsets);
        let mut close = Vec::new();
        ws::put_frame(
            &mut close,
            ws::OP_CLOSE,
            &ws::close_payload(ws::CLOSE_NORMAL),
            None,
        );
        pieces.push((1, 0..close.len()));
        let bufs = vec![buf, close];
        let wire_bytes = pieces.iter().map(|(_, r)| r.len() as u64).sum();
        Self {
            bufs,
            pieces,
            messages: n,
            message_bytes: payload.total_bytes(first + n) - payload.total_bytes(first),
            wire_bytes,
        }
    }

    /// The byte pieces in send order, each made of whole frames.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().map(|(i, r)| &self.bufs[*i][r.clone()])
    }
}

/// What the client sent on the connection, after the handshake.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientTraffic {
    /// All frames.
    pub frames: u64,
    /// Text or binary frames (subscribe requests and the like).
    pub data_frames: u64,
    /// Ping frames (answered between two write pieces while data is still being sent).
    pub pings: u64,
    /// Pong frames.
    pub pongs: u64,
    /// Pongs the server sent back for the client's pings.
    pub pongs_sent: u64,
    /// Status code of the client's close frame, if it had one.
    pub close_code: Option<u16>,
}

/// How the client ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEnd {
    /// It answered our close frame with its own: the clean case.
    CloseReply,
    /// It closed the TCP connection without a close frame.
    Eof,
}

/// Timings and traffic of one served connection.
#[derive(Debug, Clone)]
pub struct ServerReport {
    /// The request target the client asked for.
    pub path: String,
    /// Just before the first data frame was written.
    pub first_write: Instant,
    /// After the close frame was handed to the kernel.
    pub all_written: Instant,
    /// When the client's close reply (or EOF) was read: every message consumed.
    pub client_done: Instant,
    /// Which of the two ended it.
    pub client_end: ClientEnd,
    /// What the client sent.
    pub traffic: ClientTraffic,
}

impl ServerReport {
    /// From the first frame written to the client's close reply.
    pub fn elapsed(&self) -> Duration {
        self.client_done - self.first_write
    }
}

/// A server on `127.0.0.1:0` run by a thread of its own: its address, its stop flag and the
/// thread with its result. Dropping it stops the thread and waits for it.
struct ServerThread<R> {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The thread's name, for the error when it panics.
    name: &'static str,
    thread: Option<JoinHandle<Result<R>>>,
}

impl<R: Send + 'static> ServerThread<R> {
    /// Binds `127.0.0.1:0` and runs `serve` with the listener and the stop flag on a thread
    /// named `name`.
    fn spawn(
        name: &'static str,
        serve: impl FnOnce(TcpListener, &AtomicBool) -> Result<R> + Send + 'static,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(listener, &flag))
            .with_context(|| format!("spawning the {name} thread"))?;
        Ok(Self {
            addr,
            stop,
            name,
            thread: Some(thread),
        })
    }

    fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn join(mut self) -> Result<R> {
        let thread = self.thread.take().context("server already joined")?;
        match thread.join() {
            Ok(result) => result,
            Err(_) => bail!("{} thread panicked", self.name),
        }
    }
}

impl<R> Drop for ServerThread<R> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A flood server on its own threads: one connection per block of frames, one after the other
/// (a single block for the flood workload; several for the reconnect workload).
pub struct FloodServer(ServerThread<Vec<ServerReport>>);

impl FloodServer {
    /// Binds `127.0.0.1:0` and starts serving `frames` to the first client that connects.
    /// The server gives up at `deadline` or when [`stop`](Self::stop) is called.
    ///
    /// # Errors
    /// Binding or spawning the thread fails.
    pub fn start(frames: Arc<Encoded>, deadline: Instant) -> Result<Self> {
        Self::start_blocks(vec![frames], deadline)
    }

    /// Binds `127.0.0.1:0` and serves `blocks[0]` to the first client that connects, then,
    /// once that client has answered the close frame, `blocks[1]` to the next connection, and so
    /// on. After the last block the listener is closed: a further reconnect is refused.
    ///
    /// # Errors
    /// Binding or spawning the thread fails.
    pub fn start_blocks(blocks: Vec<Arc<Encoded>>, deadline: Instant) -> Result<Self> {
        ServerThread::spawn("flood-server", move |listener, stop| {
            serve_blocks(listener, &blocks, stop, deadline)
        })
        .map(Self)
    }

    /// The `ws://` URL to give the client.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.0.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// Whether the server thread has ended (served, failed or stopped).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Asks the server threads to give up at their next poll.
    pub fn stop(&self) {
        self.0.stop();
    }

    /// Waits for the server thread and returns the report of its (first) connection.
    ///
    /// # Errors
    /// Whatever went wrong while serving, or a panic of the server thread.
    pub fn join(self) -> Result<ServerReport> {
        self.join_all()?
            .into_iter()
            .next()
            .context("the flood server served no connection")
    }

    /// Waits for the server thread and returns the report of every connection, in order.
    ///
    /// # Errors
    /// Whatever went wrong while serving, or a panic of the server thread.
    pub fn join_all(self) -> Result<Vec<ServerReport>> {
        self.0.join()
    }
}

/// Fails if the stop flag is up or the deadline has passed.
pub(crate) fn check_alive(stop: &AtomicBool, deadline: Instant, what: &str) -> Result<()> {
    ensure!(!stop.load(Ordering::Relaxed), "stopped while {what}");
    ensure!(Instant::now() < deadline, "timed out while {what}");
    Ok(())
}

/// Whether an I/O error only means a read timeout elapsed.
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Accepts one connection, polling so that stop and deadline are honoured.
fn accept(listener: &TcpListener, stop: &AtomicBool, deadline: Instant) -> Result<TcpStream> {
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                check_alive(stop, deadline, "waiting for the client to connect")?;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("accepting the client"),
        }
    }
}

/// Reads the upgrade request and answers 101; returns the path and any bytes read past the head.
pub(crate) fn handshake(
    stream: &mut TcpStream,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let request = loop {
        if let Some(request) = ws::parse_upgrade_request(&buf)? {
            break request;
        }
        match stream.read(&mut chunk) {
            Ok(0) => bail!("client closed the connection during the handshake"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => check_alive(stop, deadline, "reading the upgrade")?,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading the upgrade request"),
        }
    };
    stream
        .write_all(ws::upgrade_response(&request.key).as_bytes())
        .context("writing the 101 response")?;
    Ok((request.path, buf.split_off(request.consumed)))
}

/// Pong frames waiting for the writer to send them between two pieces, and how many.
type PongQueue = Mutex<(Vec<u8>, u64)>;

/// Reads and discards client frames until its close frame or EOF; returns when and how it ended.
/// Pings are answered through `pongs` (the writer owns the socket's write side).
fn drain(
    mut stream: TcpStream,
    mut pending: Vec<u8>,
    pongs: &PongQueue,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<(Instant, ClientEnd, ClientTraffic)> {
    let mut traffic = ClientTraffic::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Consume every whole frame in `pending`.
        let mut pos = 0;
        while let Some(h) = ws::parse_header(&pending[pos..])? {
            let len = h.frame_len().context("client frame too long")?;
            if pending.len() - pos < len {
                break;
            }
            traffic.frames += 1;
            let control = || {
                let mut payload = pending[pos + h.header_len..pos + len].to_vec();
                if let Some(key) = h.mask {
                    ws::unmask(&mut payload, key);
                }
                payload
            };
            match h.opcode {
                ws::OP_CLOSE => {
                    let payload = control();
                    traffic.close_code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok((Instant::now(), ClientEnd::CloseReply, traffic));
                }
                ws::OP_PING => {
                    traffic.pings += 1;
                    let payload = control();
                    // A poisoned queue only means the writer panicked; the run fails anyway.
                    if let Ok(mut q) = pongs.lock() {
                        ws::put_frame(&mut q.0, ws::OP_PONG, &payload, None);
                        q.1 += 1;
                    }
                }
                ws::OP_PONG => traffic.pongs += 1,
                _ => traffic.data_frames += 1,
            }
            pos += len;
        }
        pending.drain(..pos);
        match stream.read(&mut chunk) {
            Ok(0) => return Ok((Instant::now(), ClientEnd::Eof, traffic)),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {
                check_alive(stop, deadline, "waiting for the client's close reply")?;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("reading from the client"),
        }
    }
}

/// One connection per block, in order; the listener is closed after the last one, so a client
/// reconnecting once more is refused rather than left hanging.
fn serve_blocks(
    listener: TcpListener,
    blocks: &[Arc<Encoded>],
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<Vec<ServerReport>> {
    let mut reports = Vec::with_capacity(blocks.len());
    for (i, frames) in blocks.iter().enumerate() {
        let stream = accept(&listener, stop, deadline)
            .with_context(|| format!("connection {} of {}", i + 1, blocks.len()))?;
        let report = serve(stream, stop, deadline, |s| {
            for piece in frames.pieces() {
                s.send(piece)?;
            }
            Ok(())
        })
        .with_context(|| format!("connection {} of {}", i + 1, blocks.len()))?;
        reports.push(report);
    }
    Ok(reports)
}

/// The write side of a served connection: pieces of whole frames, each preceded by the pongs the
/// drain thread has queued since the last one. A write waits at most [`POLL`] at a time (the
/// socket's send timeout), so the stop flag and the deadline are honoured while the client does
/// not read.
struct Sender<'a> {
    stream: &'a TcpStream,
    pongs: &'a PongQueue,
    /// Pongs written so far.
    pongs_sent: u64,
    stop: &'a AtomicBool,
    deadline: Instant,
}

impl Sender<'_> {
    /// Writes the queued pongs, then `piece`.
    fn send(&mut self, piece: &[u8]) -> Result<()> {
        let (queued, count) = self
            .pongs
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        if !queued.is_empty() {
            self.pongs_sent += count;
            self.write_all(&queued)?;
        }
        self.write_all(piece)
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> Result<()> {
        let mut stream = self.stream;
        while !bytes.is_empty() {
            match stream.write(bytes) {
                Ok(0) => bail!("the client went away before reading every frame (write 0)"),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) => {
                    check_alive(self.stop, self.deadline, "writing frames")?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).context("the client went away before reading every frame");
                }
            }
        }
        Ok(())
    }
}

/// The whole life of one connection: the handshake, then `write` sends the frames (the close
/// frame included) while a second thread drains what the client sends, until its close reply.
fn serve(
    mut stream: TcpStream,
    stop: &AtomicBool,
    deadline: Instant,
    write: impl FnOnce(&mut Sender<'_>) -> Result<()>,
) -> Result<ServerReport> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(POLL))?;
    let (path, pending) = handshake(&mut stream, stop, deadline)?;
    let reader = stream.try_clone().context("cloning the socket")?;
    let pongs = PongQueue::default();
    std::thread::scope(|scope| {
        let drainer = std::thread::Builder::new()
            .name("flood-drain".into())
            .spawn_scoped(scope, || drain(reader, pending, &pongs, stop, deadline))
            .context("spawning the drain thread")?;
        let first_write = Instant::now();
        let mut sender = Sender {
            stream: &stream,
            pongs: &pongs,
            pongs_sent: 0,
            stop,
            deadline,
        };
        let written = write(&mut sender);
        let pongs_sent = sender.pongs_sent;
        let all_written = Instant::now();
        let drained = match drainer.join() {
            Ok(r) => r,
            Err(_) => bail!("drain thread panicked"),
        };
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let (client_done, client_end, mut traffic) = drained?;
        traffic.pongs_sent = pongs_sent;
        // The close reply may be read before this thread notes `all_written`: the client can
        // consume the last piece before the writer is scheduled again. Data loss shows up as a
        // failed write here or in the recording check, not in the order of these instants.
        written.context("writing frames")?;
        Ok(ServerReport {
            path,
            first_write,
            all_written,
            client_done,
            client_end,
            traffic,
        })
    })
}

/// What an [`EndlessFlood`] sent.
#[derive(Debug, Clone)]
pub struct EndlessReport {
    /// The connection's timings and client traffic.
    pub connection: ServerReport,
    /// Messages sent: messages `0..messages` of the payload, each whole, then the close frame.
    pub messages: u64,
    /// Their payload bytes.
    pub message_bytes: u64,
    /// When the writer saw [`EndlessFlood::end`] (the last piece was written after it).
    pub ended: Option<Instant>,
}

/// A flood with no set length, for a stream flooded beside another one of the same recorder
/// (the spaced-beside-flood workload): one connection on `127.0.0.1:0` is sent messages `0, 1, 2,
/// …` of a payload as fast as the client reads them until [`end`](Self::end) is called; then the
/// piece being written is finished, a close frame (1000) follows, and the server waits for the
/// client's close reply, as [`FloodServer`] does.
///
/// The frames are encoded as they go, one piece of about [`ENDLESS_PIECE`] bytes (whole frames)
/// ahead of the kernel's socket buffer: a flood of many seconds costs a megabyte of memory, not
/// gigabytes of frames encoded before the run. Encoding costs the writer thread a few tens of ns
/// per small message, several times less than any recorder spends on it, so the client is still
/// what sets the pace. How many messages went out is only known at the end
/// ([`EndlessReport::messages`]); the recording must then hold exactly those, in order, as for
/// every other flood.
pub struct EndlessFlood {
    server: ServerThread<EndlessReport>,
    end: Arc<AtomicBool>,
    /// Messages in the pieces handed to the kernel so far.
    sent: Arc<AtomicU64>,
}

impl EndlessFlood {
    /// Binds `127.0.0.1:0` and floods the first client that connects with messages of
    /// `payload`: as fast as it reads them, or with `rate` at most that many messages per
    /// second, a piece at a time (a burst of about [`ENDLESS_PIECE`] bytes, then a pause until
    /// the rate allows the next). The server gives up at `deadline` or when
    /// [`stop`](Self::stop) is called.
    ///
    /// # Errors
    /// Binding or spawning the thread fails.
    pub fn start(payload: Payload, deadline: Instant, rate: Option<f64>) -> Result<Self> {
        let end = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (ending, count) = (end.clone(), sent.clone());
        let server = ServerThread::spawn("endless-flood", move |listener, stop| {
            let stream = accept(&listener, stop, deadline)?;
            drop(listener);
            flood_until_end(stream, &payload, rate, stop, &ending, &count, deadline)
        })?;
        Ok(Self { server, end, sent })
    }

    /// The `ws://` URL to give the client.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.server.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Messages handed to the kernel so far (whole pieces): above 0 once the flood is flowing.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Asks the writer to finish the piece it is writing, send the close frame and wait for the
    /// client's close reply.
    pub fn end(&self) {
        self.end.store(true, Ordering::Relaxed);
    }

    /// Whether the server thread has ended (served, failed or stopped).
    pub fn is_finished(&self) -> bool {
        self.server.is_finished()
    }

    /// Asks the server thread to give up at its next poll (a failed run).
    pub fn stop(&self) {
        self.server.stop();
    }

    /// Waits for the server thread and returns what it sent.
    ///
    /// # Errors
    /// Whatever went wrong while serving, or a panic of the server thread.
    pub fn join(self) -> Result<EndlessReport> {
        self.server.join()
    }
}

/// The connection of an [`EndlessFlood`]: pieces of messages encoded as they go until `end` is
/// set, then the close frame.
fn flood_until_end(
    stream: TcpStream,
    payload: &Payload,
    rate: Option<f64>,
    stop: &AtomicBool,
    end: &AtomicBool,
    sent: &AtomicU64,
    deadline: Instant,
) -> Result<EndlessReport> {
    let mut messages = 0u64;
    let mut ended = None;
    let connection = serve(stream, stop, deadline, |s| {
        let mut piece = Vec::with_capacity(ENDLESS_PIECE + (1 << 16));
        let mut msg = Vec::new();
        let t0 = Instant::now();
        while !end.load(Ordering::Relaxed) {
            if let Some(rate) = rate {
                // The next piece when the rate allows it (in short naps, so `end` and `stop`
                // are seen).
                let due = t0 + Duration::from_secs_f64(messages as f64 / rate);
                let now = Instant::now();
                if now < due {
                    std::thread::sleep((due - now).min(Duration::from_millis(10)));
                    continue;
                }
            }
            piece.clear();
            while piece.len() < ENDLESS_PIECE {
                msg.clear();
                payload.write_message(messages, &mut msg);
                ws::put_frame(&mut piece, ws::OP_TEXT, &msg, None);
                messages += 1;
            }
            s.send(&piece)?;
            sent.store(messages, Ordering::Relaxed);
        }
        ended = Some(Instant::now());
        piece.clear();
        ws::put_frame(
            &mut piece,
            ws::OP_CLOSE,
            &ws::close_payload(ws::CLOSE_NORMAL),
            None,
        );
        s.send(&piece)
    })
    .with_context(|| format!("flooding (after {messages} messages)"))?;
    Ok(EndlessReport {
        connection,
        messages,
        message_bytes: payload.total_bytes(messages),
        ended,
    })
}

/// Throughput of the server alone: a client that reads and throws away exactly the encoded bytes
/// as fast as it can, then answers close. Shows the server is not what limits a recorder.
///
/// # Errors
/// Any failure of the server or of the discarding client.
pub fn measure_ceiling(frames: Arc<Encoded>, timeout: Duration) -> Result<ServerReport> {
    let wire_bytes = frames.wire_bytes;
    let server = FloodServer::start(frames, Instant::now() + timeout)?;
    let mut stream = TcpStream::connect(server.addr())?;
    stream.set_read_timeout(Some(timeout))?;
    let key = "YmVuY2gtY2VpbGluZy1rZXk=";
    stream.write_all(ws::upgrade_request(&server.addr().to_string(), "/", key).as_bytes())?;
    let mut buf = vec![0u8; 4 << 20];
    let mut have = 0;
    let head = loop {
        let n = stream.read(&mut buf[have..])?;
        ensure!(n > 0, "server closed during the handshake");
        have += n;
        if let Some(head) = ws::parse_upgrade_response(&buf[..have], key)? {
            break head;
        }
    };
    let mut left = wire_bytes - (have - head) as u64;
    while left > 0 {
        let n = stream.read(&mut buf)?;
        ensure!(n > 0, "server closed with {left} bytes still to come");
        left = left.saturating_sub(n as u64);
    }
    let mut close = Vec::new();
    ws::put_frame(
        &mut close,
        ws::OP_CLOSE,
        &ws::close_payload(ws::CLOSE_NORMAL),
        Some([0x5a, 0xa5, 0x3c, 0xc3]),
    );
    stream.write_all(&close)?;
    server.join()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tungstenite::Message;
    use tungstenite::protocol::frame::coding::CloseCode;

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    /// Drives the server with tungstenite (an independent implementation) and checks every
    /// message, the close code, and that client pings and texts are drained.
    fn round_trip(payload: &Payload, n: u64) -> ServerReport {
        let frames = Arc::new(Encoded::new(payload, n));
        let server = FloodServer::start(frames, deadline()).unwrap();
        let tcp = TcpStream::connect(server.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (mut ws, resp) = tungstenite::client::client(server.url(), tcp).unwrap();
        assert_eq!(resp.status(), 101);
        ws.send(Message::text(r#"{"op":"subscribe"}"#)).unwrap();
        ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
        let mut expected = Vec::new();
        let mut k = 0u64;
        let mut pongs = 0;
        loop {
            match ws.read().unwrap() {
                Message::Pong(data) => {
                    assert_eq!(&data[..], b"hi");
                    pongs += 1;
                }
                Message::Text(text) => {
                    expected.clear();
                    payload.write_message(k, &mut expected);
                    assert_eq!(text.as_bytes(), &expected[..], "message {k}");
                    k += 1;
                }
                Message::Close(frame) => {
                    assert_eq!(frame.unwrap().code, CloseCode::Normal);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(k, n);
        // tungstenite queued the close reply; flushing sends it.
        let _ = ws.flush();
        let report = server.join().unwrap();
        assert_eq!(report.client_end, ClientEnd::CloseReply);
        assert_eq!(report.traffic.close_code, Some(1000));
        assert_eq!(report.traffic.pings, 1);
        assert_eq!(report.traffic.pongs_sent, pongs);
        assert_eq!(report.traffic.data_frames, 1);
        assert_eq!(report.path, "/");
        report
    }

    #[test]
    fn tungstenite_reads_7_bit_frames() {
        round_trip(&Payload::small(100).unwrap(), 500);
    }

    #[test]
    fn tungstenite_reads_16_bit_frames() {
        round_trip(&Payload::small(200).unwrap(), 5_000);
    }

    #[test]
    fn tungstenite_reads_64_bit_frames() {
        round_trip(&Payload::small(70_000).unwrap(), 50);
    }

    #[test]
    fn tungstenite_reads_cycled_corpus() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/corpus");
        let payload = Payload::load_corpus(&dir).unwrap();
        let n = 2 * payload.period().unwrap() + 123;
        let frames = Encoded::new(&payload, n);
        assert_eq!(
            frames.bufs.len(),
            2,
            "one cycle buffer plus the close frame"
        );
        round_trip(&payload, n);
    }

    #[test]
    fn pings_are_answered_mid_stream() {
        let payload = Payload::small(200).unwrap();
        let n = 200_000;
        let frames = Arc::new(Encoded::new(&payload, n));
        assert!(frames.pieces().count() > 5);
        let server = FloodServer::start(frames, deadline()).unwrap();
        let tcp = TcpStream::connect(server.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (mut ws, _) = tungstenite::client::client(server.url(), tcp).unwrap();
        let (mut texts, mut pong_at) = (0u64, None);
        loop {
            match ws.read().unwrap() {
                Message::Text(_) => {
                    texts += 1;
                    if texts == 10 {
                        ws.send(Message::Ping(b"p".to_vec().into())).unwrap();
                    }
                }
                Message::Pong(_) => pong_at = Some(texts),
                Message::Close(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        let _ = ws.flush();
        assert_eq!(texts, n);
        let pong_at = pong_at.expect("pong received");
        assert!(
            pong_at < n,
            "pong came before the end, after message {pong_at}"
        );
        let report = server.join().unwrap();
        assert_eq!(report.traffic.pongs_sent, 1);
    }

    #[test]
    fn the_endless_flood_sends_until_ended_then_closes() {
        let payload = Payload::small(200).unwrap();
        let flood = EndlessFlood::start(payload.clone(), deadline(), None).unwrap();
        let tcp = TcpStream::connect(flood.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (mut ws, _) = tungstenite::client::client(flood.url(), tcp).unwrap();
        ws.send(Message::Ping(b"p".to_vec().into())).unwrap();
        let (mut k, mut pongs, mut expected) = (0u64, 0, Vec::new());
        // Several pieces of about 5,000 messages each before the end.
        let end_at = 30_000;
        loop {
            match ws.read().unwrap() {
                Message::Text(text) => {
                    expected.clear();
                    payload.write_message(k, &mut expected);
                    assert_eq!(text.as_bytes(), &expected[..], "message {k}");
                    k += 1;
                    if k == end_at {
                        // Message 30,000 was in a later piece than the first: that one was
                        // written whole.
                        assert!(flood.sent() > 0);
                        flood.end();
                    }
                }
                Message::Pong(_) => pongs += 1,
                Message::Close(frame) => {
                    assert_eq!(frame.unwrap().code, CloseCode::Normal);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let _ = ws.flush();
        let report = flood.join().unwrap();
        assert!(k >= end_at);
        assert_eq!(report.messages, k, "every message sent was read, no more");
        assert_eq!(report.message_bytes, payload.total_bytes(k));
        assert!(report.ended.is_some());
        let c = &report.connection;
        assert_eq!(c.client_end, ClientEnd::CloseReply);
        assert_eq!((c.traffic.pings, c.traffic.pongs_sent, pongs), (1, 1, 1));
    }

    /// With a rate, the flood never runs ahead of it: at most one piece (about 5,000 messages)
    /// beyond what the rate allows since the start, however fast the client reads.
    #[test]
    fn a_rate_holds_the_endless_flood_back() {
        let rate = 20_000.0;
        let flood =
            EndlessFlood::start(Payload::small(200).unwrap(), deadline(), Some(rate)).unwrap();
        let tcp = TcpStream::connect(flood.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (mut ws, _) = tungstenite::client::client(flood.url(), tcp).unwrap();
        let start = Instant::now();
        let mut k = 0u64;
        // Three pieces' worth of messages: the third cannot come before 0.5 s at this rate.
        while k < 15_000 {
            if let Message::Text(_) = ws.read().unwrap() {
                k += 1;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        flood.end();
        while !matches!(ws.read().unwrap(), Message::Close(_)) {}
        let _ = ws.flush();
        let report = flood.join().unwrap();
        let piece = (ENDLESS_PIECE / 200) as f64 * 1.1;
        assert!(
            (k as f64) <= rate * elapsed + piece,
            "{k} messages in {elapsed:.3} s at {rate}/s"
        );
        assert!(report.messages >= k);
    }

    #[test]
    fn a_client_leaving_the_endless_flood_fails_it() {
        let flood = EndlessFlood::start(Payload::small(200).unwrap(), deadline(), None).unwrap();
        let tcp = TcpStream::connect(flood.addr()).unwrap();
        let (mut ws, _) = tungstenite::client::client(flood.url(), tcp).unwrap();
        for _ in 0..10 {
            ws.read().unwrap();
        }
        drop(ws);
        let err = flood.join().unwrap_err();
        assert!(format!("{err:#}").contains("flooding (after"), "{err:#}");
    }

    #[test]
    fn client_that_vanishes_fails_the_run() {
        let payload = Payload::small(200).unwrap();
        let frames = Arc::new(Encoded::new(&payload, 200_000));
        let server = FloodServer::start(frames, deadline()).unwrap();
        let tcp = TcpStream::connect(server.addr()).unwrap();
        let (mut ws, _) = tungstenite::client::client(server.url(), tcp).unwrap();
        for _ in 0..10 {
            ws.read().unwrap();
        }
        drop(ws);
        assert!(server.join().is_err());
    }

    #[test]
    fn nobody_connecting_times_out() {
        let frames = Arc::new(Encoded::new(&Payload::small(100).unwrap(), 1));
        let server =
            FloodServer::start(frames, Instant::now() + Duration::from_millis(100)).unwrap();
        let err = server.join().unwrap_err();
        assert!(format!("{err:#}").contains("timed out"), "{err:#}");
    }

    #[test]
    fn ceiling_client_reads_everything() {
        let payload = Payload::small(200).unwrap();
        let frames = Arc::new(Encoded::new(&payload, 100_000));
        let report = measure_ceiling(frames, Duration::from_secs(30)).unwrap();
        assert_eq!(report.client_end, ClientEnd::CloseReply);
    }
}
