//! An open WebSocket ([`Socket`]): the next message or control frame, cut from the read buffer
//! by `frame.rs` (with the ping-flood limit and the answers a client owes: pongs, the close
//! reply), its kernel receive time when stamps are on, and the few things wsrec sends (text,
//! ping, close).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::error::{TransportError, describe_io};
use super::frame::{Data, Fault, Got, Reader, Step, close_payload, encode};
use super::stamp::Stamp;
use super::wire::Io;

/// Window over which server pings are counted.
const PING_WINDOW: Duration = Duration::from_secs(1);
/// More pings than this within `PING_WINDOW` (1 s) is a ping flood. Real servers ping every few
/// seconds at most, and a flood would keep the recorder answering.
pub const MAX_PINGS_PER_WINDOW: u32 = 100;

/// Size of the socket read buffer: one read takes up to ~160 small frames at flood rate. A
/// quiet connection's bytes always land at its front (`poll_fill` moves a partial frame there
/// before each read), so only its first pages become resident. A larger frame grows it for
/// that frame only.
const READ_BUFFER: usize = 32 * 1024;

/// Opcodes of the frames wsrec sends.
const TEXT: u8 = 1;
const CLOSE: u8 = 8;
const PING: u8 = 9;
const PONG: u8 = 10;

/// A frame as the recorder sees it; a message's bytes are borrowed from the socket until the
/// next read.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A complete text message (UTF-8 checked).
    Text(&'a [u8]),
    /// A complete text message that is ASCII without CR or LF (so one line as it is).
    Line(&'a [u8]),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping from the server (its pong is on the way).
    Ping,
    /// A pong from the server.
    Pong,
    /// The server closed the connection.
    Close {
        /// Close code, if the frame had one.
        code: Option<u16>,
        /// Close reason text.
        reason: String,
    },
}

/// Where the frame [`Socket::poll_frame`] took lies (no borrow, so the poll loop can go on
/// reading; [`Socket::view`] turns it into an [`Incoming`]).
enum Took {
    /// A message at this range of the read buffer.
    InPlace(Data, std::ops::Range<usize>),
    /// A message in the reader's buffer.
    Assembled(Data),
    Ping,
    Pong,
    Close(Option<u16>, String),
}

/// An open WebSocket: the socket a connection task reads frames from.
pub struct Socket {
    /// The TCP or TLS stream.
    io: Io,
    /// Bytes read; those from `start` on are not taken yet.
    buf: Vec<u8>,
    /// Where the bytes not taken yet begin.
    start: usize,
    /// The frame reader and its message state.
    reader: Reader,
    /// Frames to send, from `sent` on not yet handed to the stream.
    out: Vec<u8>,
    /// Bytes of `out` handed to the stream.
    sent: usize,
    /// Bytes handed to the stream since its last flush (TLS holds them until flushed).
    unflushed: bool,
    /// The latest ping's payload, when its pong is not in `out` yet. Only the latest ping is
    /// answered when several wait (RFC 6455 5.5.3 allows it), so pongs cannot pile up.
    pong: Option<Vec<u8>>,
    /// For the too-large error message.
    max_message_size: usize,
    /// The permessage-deflate parameters in force, if negotiated.
    extensions: Option<String>,
    /// Start of the current ping-counting window.
    ping_window: Instant,
    /// Pings seen in the current window.
    pings: u32,
    /// Kernel receive times, when they are on.
    stamp: Option<Stamp>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// A connection over the upgraded stream `io`, whose first bytes (read with the upgrade
    /// answer) are `prefix`; `extensions` are the permessage-deflate parameters in force,
    /// `stamp` the cell of kernel receive times (when they are on).
    pub(super) fn new(
        io: Io,
        prefix: &[u8],
        max_message_size: usize,
        extensions: Option<String>,
        stamp: Option<Stamp>,
    ) -> Socket {
        let mut buf = Vec::with_capacity(READ_BUFFER.max(prefix.len()));
        buf.extend_from_slice(prefix);
        Socket {
            io,
            buf,
            start: 0,
            reader: Reader::new(max_message_size, extensions.is_some()),
            out: Vec::new(),
            sent: 0,
            unflushed: false,
            pong: None,
            max_message_size,
            extensions,
            ping_window: Instant::now(),
            pings: 0,
            stamp,
        }
    }

    /// Whether receive times come from the kernel on this connection.
    pub fn kernel_stamps(&self) -> bool {
        self.stamp.is_some()
    }

    /// The cell of kernel receive times, when they are on: it holds the time the kernel
    /// received the data of the latest socket read, in ns since the Unix epoch (0: no read has
    /// brought one yet, as for bytes that came with the handshake answer), i.e. the arrival of
    /// the TCP data that completed the frames returned since.
    pub fn stamp(&self) -> Option<Stamp> {
        self.stamp.clone()
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Polls for the next frame.
    pub fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Incoming<'_>, TransportError>> {
        let took = ready!(self.poll_frame(cx))?;
        Poll::Ready(Ok(self.view(took)))
    }

    /// The next frame.
    pub async fn next(&mut self) -> Result<Incoming<'_>, TransportError> {
        let took = std::future::poll_fn(|cx| self.poll_frame(cx)).await?;
        Ok(self.view(took))
    }

    /// A frame if one can be had without waiting (already buffered or readable now).
    pub fn try_next(&mut self) -> Option<Result<Incoming<'_>, TransportError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_frame(&mut cx) {
            Poll::Ready(Ok(took)) => Some(Ok(self.view(took))),
            Poll::Ready(Err(e)) => Some(Err(e)),
            Poll::Pending => None,
        }
    }

    /// The frame `took` describes.
    fn view(&self, took: Took) -> Incoming<'_> {
        let message = |data, bytes| match data {
            Data::Text => Incoming::Text(bytes),
            Data::Line => Incoming::Line(bytes),
            Data::Binary => Incoming::Binary(bytes),
        };
        match took {
            Took::InPlace(data, range) => message(data, &self.buf[range]),
            Took::Assembled(data) => message(data, self.reader.message()),
            Took::Ping => Incoming::Ping,
            Took::Pong => Incoming::Pong,
            Took::Close(code, reason) => Incoming::Close { code, reason },
        }
    }

    /// Sends what waits to be sent, as far as the stream takes it now, then takes the next
    /// frame from the buffer, reading when it holds no whole frame.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Took, TransportError>> {
        if self.has_output()
            && let Poll::Ready(Err(e)) = self.poll_send(cx)
        {
            return Poll::Ready(Err(TransportError::Failed(format!(
                "sending to the server failed: {}",
                describe_io(&e)
            ))));
        }
        loop {
            let at = self.start;
            let step = match self.reader.step(&self.buf[at..]) {
                Ok(step) => step,
                Err(fault) => return Poll::Ready(Err(self.fail(cx, fault))),
            };
            let (used, got) = match step {
                Step::Took(used, got) => (used, got),
                Step::More(need) => {
                    if let Err(e) = ready!(self.poll_fill(cx, need)) {
                        return Poll::Ready(Err(e));
                    }
                    continue;
                }
            };
            self.start += used;
            let took = match got {
                Got::Fragment => continue,
                Got::InPlace(data, r) => Took::InPlace(data, at + r.start..at + r.end),
                Got::Assembled(data) => Took::Assembled(data),
                Got::Pong => Took::Pong,
                Got::Ping(r) => {
                    self.count_ping()?;
                    self.pong = Some(self.buf[at + r.start..at + r.end].to_vec());
                    let _ = self.poll_send(cx);
                    Took::Ping
                }
                Got::Close(code, reason) => {
                    // The reply echoes the code (RFC 6455 5.5.1); it goes out before any
                    // later read, and `finish_close` waits for it.
                    let payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
                    self.queue(CLOSE, &payload);
                    let _ = self.poll_send(cx);
                    Took::Close(code, reason)
                }
            };
            return Poll::Ready(Ok(took));
        }
    }

    /// Reads more bytes, so that the buffer can hold `need` bytes of frame from its start.
    fn poll_fill(&mut self, cx: &mut Context<'_>, need: usize) -> Poll<Result<(), TransportError>> {
        if self.start > 0 {
            // Move the partial frame to the front (at most one frame's bytes).
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        if self.buf.is_empty() && self.buf.capacity() > READ_BUFFER {
            // A large frame is gone: give its room back.
            self.buf = Vec::with_capacity(READ_BUFFER);
        }
        if need > self.buf.capacity() {
            self.buf.reserve_exact(need - self.buf.len());
        }
        let len = self.buf.len();
        let mut read = ReadBuf::uninit(self.buf.spare_capacity_mut());
        let result = ready!(Pin::new(&mut self.io).poll_read(cx, &mut read));
        let n = read.filled().len();
        if let Err(e) = result {
            return Poll::Ready(Err(TransportError::Failed(describe_io(&e))));
        }
        if n == 0 {
            return Poll::Ready(Err(TransportError::Failed(
                "the server closed the TCP connection without a WebSocket close frame".to_owned(),
            )));
        }
        // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity.
        unsafe { self.buf.set_len(len + n) };
        Poll::Ready(Ok(()))
    }

    /// The error for `fault`, after trying once, without waiting, to tell the server why with a
    /// close frame (RFC 6455 7.1.7).
    fn fail(&mut self, cx: &mut Context<'_>, fault: Fault) -> TransportError {
        self.queue(CLOSE, &close_payload(fault.close_code(), ""));
        let _ = self.poll_send(cx);
        match fault {
            Fault::TooLarge => TransportError::TooLarge(self.max_message_size),
            Fault::Broken(_, why) => TransportError::Failed(why),
        }
    }

    /// Counts a server ping; too many in a window is a flood that ends the connection.
    fn count_ping(&mut self) -> Result<(), TransportError> {
        let now = Instant::now();
        if now.duration_since(self.ping_window) >= PING_WINDOW {
            self.ping_window = now;
            self.pings = 0;
        }
        self.pings += 1;
        if self.pings > MAX_PINGS_PER_WINDOW {
            return Err(TransportError::Failed(format!(
                "server sent more than {MAX_PINGS_PER_WINDOW} pings within {PING_WINDOW:?} (ping \
                 flood); each ping costs a pong, so the connection was dropped"
            )));
        }
        Ok(())
    }

    /// Whether something waits to be sent or flushed.
    fn has_output(&self) -> bool {
        self.sent < self.out.len() || self.pong.is_some() || self.unflushed
    }

    /// Appends a frame to what is to be sent.
    fn queue(&mut self, opcode: u8, payload: &[u8]) {
        encode(&mut self.out, opcode, payload, rand::random());
    }

    /// Hands what is to be sent to the stream and flushes it.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.sent == self.out.len() {
                self.out.clear();
                self.sent = 0;
                match self.pong.take() {
                    Some(p) => self.queue(PONG, &p),
                    None => break,
                }
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends a frame (after whatever waits to be sent).
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> Result<(), TransportError> {
        self.queue(opcode, payload);
        std::future::poll_fn(|cx| self.poll_send(cx))
            .await
            .map_err(|e| TransportError::Failed(describe_io(&e)))
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        self.send(TEXT, text.as_bytes()).await
    }

    /// Sends a protocol ping.
    pub async fn send_ping(&mut self) -> Result<(), TransportError> {
        self.send(PING, b"wsrec").await
    }

    /// After the server's close frame: sends the close reply, and waits (up to `wait`) for the
    /// server to end the connection.
    pub async fn finish_close(&mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, async {
            while std::future::poll_fn(|cx| self.poll_frame(cx)).await.is_ok() {}
        })
        .await;
    }

    /// Sends a close frame (code 1000 or 1001) and gives the peer up to `wait` to take it.
    pub async fn close(&mut self, going_away: bool, reason: &str, wait: Duration) {
        let code = if going_away { 1001 } else { 1000 };
        let payload = close_payload(code, reason);
        let _ = tokio::time::timeout(wait, self.send(CLOSE, &payload)).await;
    }
}
