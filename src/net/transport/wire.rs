//! The byte stream under yawc: TCP or TLS, the bytes read past the handshake answer, and the
//! frame-header check ([`FrameScan`]) that catches what yawc lets through (module doc of
//! [`super`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::stamp::Tcp;

/// TCP or TLS.
pub(super) enum Io {
    Plain(Tcp),
    Tls(Box<tokio_rustls::client::TlsStream<Tcp>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The stream yawc reads: first the bytes that arrived with the handshake answer, then the
/// socket; every byte passes the [`FrameScan`] on the way.
pub struct Wire {
    io: Io,
    /// Bytes read past the end of the upgrade response, served first.
    prefix: Bytes,
    /// The frame-header check.
    scan: FrameScan,
}

impl Wire {
    pub(super) fn new(io: Io, prefix: Bytes) -> Self {
        Self {
            io,
            prefix,
            scan: FrameScan::default(),
        }
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(reason) = this.scan.failed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, reason)));
        }
        let start = buf.filled().len();
        if this.prefix.is_empty() {
            std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        } else {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
        }
        match this.scan.scan(&buf.filled()[start..]) {
            Ok(()) => Poll::Ready(Ok(())),
            // Hand over the frames before the bad one (they were received and are recorded);
            // the next read reports the error.
            Err(e) if e.valid > 0 => {
                buf.set_filled(start + e.valid);
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.reason))),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Why [`FrameScan`] stopped a connection.
const MASKED_FRAME: &str = "server sent a masked frame; RFC 6455 5.1 forbids masking from server \
                            to client, so the connection was dropped rather than recording \
                            scrambled bytes";
/// Why [`FrameScan`] stopped a connection.
const LENGTH_TOP_BIT: &str = "server sent a frame header whose 64-bit length has the top bit set \
                              (2^63 bytes or more; RFC 6455 5.2 forbids it)";

/// Follows frame boundaries in the bytes a server sends and checks each frame header, without
/// copying payloads: a header is looked at, its payload length skipped.
#[derive(Debug, Default, Clone)]
pub struct FrameScan {
    /// Payload bytes of the current frame not seen yet.
    skip: u64,
    /// A header split across reads, collected here (a header is at most 14 bytes).
    head: [u8; 14],
    /// Bytes in `head`.
    have: usize,
    /// Set once a header failed the check; every later read fails the same way.
    failed: Option<&'static str>,
}

impl FrameScan {
    /// Checks the next bytes of the stream.
    ///
    /// # Errors
    /// A masked frame, or a 64-bit length with the top bit set, with how many of `data`'s
    /// bytes come before the bad frame (those are good: the frames in them are delivered).
    pub fn scan(&mut self, data: &[u8]) -> Result<(), ScanError> {
        if let Some(reason) = self.failed {
            return Err(ScanError { valid: 0, reason });
        }
        let mut pos = 0;
        // Where the header being collected began in `data` (0 if in an earlier read).
        let mut head_start = 0;
        loop {
            if self.skip > 0 {
                let left = (data.len() - pos) as u64;
                if left <= self.skip {
                    self.skip -= left;
                    return Ok(());
                }
                // `skip` is below the bytes left here, so it fits in usize.
                pos += self.skip as usize;
                self.skip = 0;
            }
            if pos == data.len() {
                return Ok(());
            }
            let fail = |this: &mut Self, at: usize, reason| {
                this.failed = Some(reason);
                Err(ScanError { valid: at, reason })
            };
            if self.have == 0 && data.len() - pos >= self.head.len() {
                // The whole header is in this read: no copy.
                match header(&data[pos..]) {
                    Ok(h) => {
                        self.skip = h.payload_len;
                        pos += h.header_len;
                        continue;
                    }
                    Err(reason) => return fail(self, pos, reason),
                }
            }
            if self.have == 0 {
                head_start = pos;
            }
            let need = if self.have < 2 {
                2
            } else {
                header_size(self.head[1])
            };
            let take = (need - self.have).min(data.len() - pos);
            self.head[self.have..self.have + take].copy_from_slice(&data[pos..pos + take]);
            self.have += take;
            pos += take;
            if self.have < need {
                return Ok(());
            }
            if self.have < header_size(self.head[1]) {
                if self.head[1] & 0x80 != 0 {
                    return fail(self, head_start, MASKED_FRAME);
                }
                continue;
            }
            match header(&self.head) {
                Ok(h) => {
                    self.have = 0;
                    self.skip = h.payload_len;
                }
                Err(reason) => return fail(self, head_start, reason),
            }
        }
    }
}

/// A frame header [`FrameScan`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    /// Bytes of the scanned chunk before the bad frame.
    pub valid: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// What a frame header says about where the next one starts.
struct FrameHeader {
    /// Bytes of payload after the header.
    payload_len: u64,
    /// Bytes of the header itself.
    header_len: usize,
}

/// Payload length and header size of the complete header at the start of `h`.
fn header(h: &[u8]) -> Result<FrameHeader, &'static str> {
    let b1 = h[1];
    if b1 & 0x80 != 0 {
        return Err(MASKED_FRAME);
    }
    let (payload_len, header_len) = match b1 & 0x7f {
        126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&h[2..10]);
            let len = u64::from_be_bytes(n);
            if len >> 63 != 0 {
                return Err(LENGTH_TOP_BIT);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    Ok(FrameHeader {
        payload_len,
        header_len,
    })
}

/// Header size from the second header byte (length code and mask bit).
fn header_size(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: `fin|opcode`, then the length in its shortest form, optional mask key.
    fn header(opcode: u8, len: u64, masked: bool) -> Vec<u8> {
        let mut h = vec![0x80 | opcode];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => h.push(m | len as u8),
            126..=0xffff => {
                h.push(m | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(m | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        if masked {
            h.extend_from_slice(&[1, 2, 3, 4]);
        }
        h
    }

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = header(opcode, payload.len() as u64, false);
        f.extend_from_slice(payload);
        f
    }

    /// Feeds `bytes` to a fresh scanner in pieces of `step` bytes; on error, the offset in
    /// `bytes` where the good part ends.
    fn scan_in_steps(bytes: &[u8], step: usize) -> Result<(), (usize, &'static str)> {
        let mut scan = FrameScan::default();
        for (i, chunk) in bytes.chunks(step).enumerate() {
            scan.scan(chunk)
                .map_err(|e| (i * step + e.valid, e.reason))?;
        }
        Ok(())
    }

    #[test]
    fn frame_scan_follows_valid_streams_split_anywhere() {
        let mut stream = Vec::new();
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            stream.extend(frame(2, &vec![0x81; len]));
            stream.extend(frame(9, b"ping"));
        }
        for step in [1, 2, 3, 7, 13, 14, 15, 1000, stream.len()] {
            assert_eq!(scan_in_steps(&stream, step), Ok(()), "step {step}");
        }
    }

    #[test]
    fn frame_scan_rejects_a_masked_frame_however_it_arrives() {
        let mut stream = frame(1, b"hello");
        let good = stream.len();
        stream.extend(header(1, 5, true));
        stream.extend_from_slice(b"xxxxx");
        for step in [1, 2, 5, 9, stream.len()] {
            // The good frame is always delivered; at most the bad header's start goes with it.
            let (valid, reason) = scan_in_steps(&stream, step).unwrap_err();
            assert_eq!(reason, MASKED_FRAME, "step {step}");
            assert!((good..good + 2).contains(&valid), "step {step}: {valid}");
        }
        assert_eq!(
            scan_in_steps(&stream, stream.len()),
            Err((good, MASKED_FRAME))
        );
        // Once failed, it stays failed.
        let mut scan = FrameScan::default();
        assert!(scan.scan(&header(1, 0, true)).is_err());
        assert!(scan.scan(&frame(1, b"ok")).is_err());
    }

    #[test]
    fn frame_scan_rejects_a_length_with_the_top_bit_set() {
        let h = header(2, 1 << 63, false);
        for step in [1, 4, h.len()] {
            assert_eq!(
                scan_in_steps(&h, step).unwrap_err().1,
                LENGTH_TOP_BIT,
                "step {step}"
            );
        }
        let mut stream = frame(1, b"before");
        let good = stream.len();
        stream.extend(header(2, 1 << 63, false));
        assert_eq!(
            scan_in_steps(&stream, stream.len()),
            Err((good, LENGTH_TOP_BIT))
        );
        // 2^63 - 1 is legal for the scanner (yawc's size limit rejects it).
        assert_eq!(scan_in_steps(&header(2, (1 << 63) - 1, false), 3), Ok(()));
    }
}
