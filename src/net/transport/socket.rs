//! An open WebSocket ([`Socket`]): the next frame (with the ping-flood limit), its kernel
//! receive time when stamps are on, and the few things wsrec sends (text, ping, close).

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio::time::Instant;
use yawc::{Frame, OpCode, WebSocket};

use super::error::{TransportError, describe};
use super::stamp::Stamp;
use super::wire::Wire;

/// Window over which server pings are counted.
const PING_WINDOW: Duration = Duration::from_secs(1);
/// More pings than this within `PING_WINDOW` (1 s) is a ping flood. Real servers ping every few
/// seconds at most; each ping costs a queued pong.
pub const MAX_PINGS_PER_WINDOW: u32 = 100;

/// A frame as the recorder sees it.
#[derive(Debug)]
pub enum Incoming {
    /// A complete text message (UTF-8 checked).
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping from the server (already answered).
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

/// An open WebSocket: the socket a connection task reads frames from.
pub struct Socket {
    /// The yawc socket over the checked byte stream.
    ws: WebSocket<Wire>,
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
    /// A connection over the upgraded socket `ws`; `extensions` are the permessage-deflate
    /// parameters in force, `stamp` the cell of kernel receive times (when they are on).
    pub(super) fn new(
        ws: WebSocket<Wire>,
        max_message_size: usize,
        extensions: Option<String>,
        stamp: Option<Stamp>,
    ) -> Socket {
        Socket {
            ws,
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

    /// With kernel receive times: when the kernel received the data of the latest socket read,
    /// in ns since the Unix epoch, i.e. the arrival of the TCP data that completed the frames
    /// returned since (`None`: stamps are off, or no read has brought one yet, as for bytes that
    /// came with the handshake answer).
    #[inline]
    pub fn received_ns(&self) -> Option<u64> {
        let ns = self
            .stamp
            .as_ref()?
            .load(std::sync::atomic::Ordering::Relaxed);
        (ns > 0).then_some(ns)
    }

    /// The permessage-deflate parameters in force, if compression was negotiated.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// Polls for the next frame.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, TransportError>> {
        match self.ws.poll_next_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(frame)) => {
                if frame.opcode() == OpCode::Ping
                    && let Err(e) = self.count_ping()
                {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(convert(frame)))
            }
            Poll::Ready(Err(yawc::WebSocketError::FrameTooLarge)) => {
                Poll::Ready(Err(TransportError::TooLarge(self.max_message_size)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(TransportError::Failed(describe(&e)))),
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

    /// The next frame.
    pub async fn next(&mut self) -> Result<Incoming, TransportError> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// A frame if one can be had without waiting (already buffered or readable now).
    pub fn try_next(&mut self) -> Option<Result<Incoming, TransportError>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_next(&mut cx) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        let frame = Frame::text(Bytes::copy_from_slice(text.as_bytes()));
        self.ws
            .send(frame)
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))
    }

    /// Sends a protocol ping.
    pub async fn send_ping(&mut self) -> Result<(), TransportError> {
        self.ws
            .send(Frame::ping(Bytes::from_static(b"wsrec")))
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))
    }

    /// After the server's close frame: lets the library send the close reply it queued, and
    /// waits (up to `wait`) for the server to end the connection.
    pub async fn finish_close(&mut self, wait: Duration) {
        let _ = tokio::time::timeout(wait, async { while self.next().await.is_ok() {} }).await;
    }

    /// Sends a close frame (code 1000 or 1001) and gives the peer up to `wait` to take it.
    pub async fn close(&mut self, going_away: bool, reason: &str, wait: Duration) {
        let code = if going_away {
            yawc::close::CloseCode::Away
        } else {
            yawc::close::CloseCode::Normal
        };
        let _ = tokio::time::timeout(wait, self.ws.send(Frame::close(code, reason))).await;
    }
}

fn convert(frame: Frame) -> Incoming {
    match frame.opcode() {
        OpCode::Text => Incoming::Text(frame.into_payload()),
        OpCode::Binary => Incoming::Binary(frame.into_payload()),
        OpCode::Ping => Incoming::Ping,
        OpCode::Pong => Incoming::Pong,
        OpCode::Close => Incoming::Close {
            code: frame.close_code().map(u16::from),
            reason: frame
                .close_reason()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned(),
        },
        // `Socket` reassembles fragments, so a bare continuation never reaches us.
        OpCode::Continuation => Incoming::Binary(frame.into_payload()),
    }
}
