//! The small part of RFC 6455 the bench needs, written out by hand so the flood server costs
//! nothing but `write` calls: the opening handshake (both sides), frame headers, and a parser for
//! one frame header at a time.
//!
//! Nothing here allocates per frame except [`put_frame`] growing the caller's buffer.

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest as _, Sha1};

/// The fixed GUID appended to `Sec-WebSocket-Key` before hashing (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Opcode of a continuation frame.
pub const OP_CONTINUATION: u8 = 0x0;
/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OP_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OP_PONG: u8 = 0xA;

/// Close status "normal closure".
pub const CLOSE_NORMAL: u16 = 1000;

/// Largest HTTP upgrade request or response accepted; more means the peer is not speaking WebSocket.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// `Sec-WebSocket-Accept` for a given `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(key.trim().as_bytes());
    hasher.update(GUID.as_bytes());
    BASE64.encode(hasher.finalize())
}

/// Length of a frame header for a payload of `len` bytes, with or without a mask key.
pub fn header_len(len: usize, masked: bool) -> usize {
    let ext = if len < 126 {
        0
    } else if len <= 0xFFFF {
        2
    } else {
        8
    };
    2 + ext + if masked { 4 } else { 0 }
}

/// Appends a final (FIN) frame header with the shortest length encoding the RFC allows.
pub fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    out.push(0x80 | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        // Fits in 7 bits by the branch condition.
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        // Fits in 16 bits by the branch condition.
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Appends one whole final frame; masks the payload when a key is given (client-to-server frames).
pub fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    put_header(out, opcode, payload.len(), mask);
    match mask {
        None => out.extend_from_slice(payload),
        Some(key) => out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4])),
    }
}

/// XORs `data` in place with a mask key, `data[i] ^= key[i % 4]`.
pub fn unmask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Payload of a close frame carrying only a status code.
pub fn close_payload(code: u16) -> [u8; 2] {
    code.to_be_bytes()
}

/// One parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: this frame ends a message.
    pub fin: bool,
    /// Opcode, low 4 bits of the first byte.
    pub opcode: u8,
    /// Mask key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// Bytes taken by the header itself, including extended length and mask key.
    pub header_len: usize,
    /// Payload length as announced.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Header plus payload, or `None` if that does not fit in `usize`.
    pub fn frame_len(&self) -> Option<usize> {
        usize::try_from(self.payload_len)
            .ok()?
            .checked_add(self.header_len)
    }
}

/// Parses the frame header at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold the whole header.
///
/// # Errors
/// Reserved bits set (no extension was negotiated), an unknown opcode, a 64-bit length with its
/// top bit set, or a control frame that is fragmented or longer than 125 bytes.
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    ensure!(b0 & 0x70 == 0, "frame has reserved bits set: {b0:#04x}");
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    ensure!(
        matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ),
        "frame has unknown opcode {opcode:#x}"
    );
    let masked = b1 & 0x80 != 0;
    let (payload_len, mut pos) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut len = [0u8; 8];
            len.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(len);
            ensure!(len >> 63 == 0, "frame length has its top bit set");
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode >= OP_CLOSE {
        ensure!(fin, "control frame {opcode:#x} is fragmented");
        ensure!(
            payload_len <= 125,
            "control frame {opcode:#x} is {payload_len} bytes long"
        );
    }
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let mut key = [0u8; 4];
        key.copy_from_slice(&buf[pos..pos + 4]);
        pos += 4;
        Some(key)
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        opcode,
        mask,
        header_len: pos,
        payload_len,
    }))
}

/// A client's upgrade request, as far as the server cares.
#[derive(Debug, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// Request target, e.g. `/`.
    pub path: String,
    /// `Sec-WebSocket-Key` value.
    pub key: String,
    /// Bytes of `buf` taken by the request head; anything after is already WebSocket frames.
    pub consumed: usize,
}

/// Position just past the blank line ending an HTTP head, if `buf` holds one.
fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4)
}

/// Header lines of an HTTP head (after the start line) as `(lower-case name, trimmed value)`.
fn headers(head: &str) -> impl Iterator<Item = (String, &str)> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim()))
}

/// Parses an HTTP/1.1 WebSocket upgrade request at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete.
///
/// # Errors
/// Not a `GET`, no `Upgrade: websocket`, no `Sec-WebSocket-Key`, or a head over 16 KiB.
pub fn parse_upgrade_request(buf: &[u8]) -> Result<Option<UpgradeRequest>> {
    let Some(end) = head_end(buf) else {
        ensure!(
            buf.len() <= MAX_HTTP_HEAD,
            "upgrade request head exceeds {MAX_HTTP_HEAD} bytes"
        );
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("upgrade request is not UTF-8")?;
    let start = head.split("\r\n").next().unwrap_or_default();
    let mut parts = start.split(' ');
    let (Some("GET"), Some(path)) = (parts.next(), parts.next()) else {
        bail!("not a GET request: {start:?}");
    };
    let mut key = None;
    let mut upgrade = false;
    for (name, value) in headers(head) {
        match name.as_str() {
            "sec-websocket-key" => key = Some(value.to_owned()),
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            _ => {}
        }
    }
    ensure!(upgrade, "request has no `Upgrade: websocket` header");
    let key = key.context("request has no Sec-WebSocket-Key header")?;
    Ok(Some(UpgradeRequest {
        path: path.to_owned(),
        key,
        consumed: end,
    }))
}

/// The `101 Switching Protocols` answer to a request with this key (no extension, no subprotocol).
pub fn upgrade_response(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
}

/// A client's upgrade request for `host` (with port) and `path`.
pub fn upgrade_request(host: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Checks a server's upgrade response at the start of `buf` against the key the client sent.
///
/// Returns the bytes taken by the response head, or `Ok(None)` while it is incomplete.
///
/// # Errors
/// A status other than 101 or a wrong or missing `Sec-WebSocket-Accept`.
pub fn parse_upgrade_response(buf: &[u8], key: &str) -> Result<Option<usize>> {
    let Some(end) = head_end(buf) else {
        ensure!(
            buf.len() <= MAX_HTTP_HEAD,
            "upgrade response head exceeds {MAX_HTTP_HEAD} bytes"
        );
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).context("upgrade response is not UTF-8")?;
    let start = head.split("\r\n").next().unwrap_or_default();
    ensure!(
        start.split(' ').nth(1) == Some("101"),
        "server answered {start:?} instead of 101"
    );
    let expected = accept_key(key);
    let accept = headers(head)
        .find(|(name, _)| name == "sec-websocket-accept")
        .map(|(_, value)| value)
        .context("response has no Sec-WebSocket-Accept header")?;
    ensure!(
        accept == expected,
        "Sec-WebSocket-Accept is {accept:?}, expected {expected:?}"
    );
    Ok(Some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn header_lengths_use_shortest_encoding() {
        for (len, hdr, b1) in [
            (0usize, 2usize, 0u8),
            (125, 2, 125),
            (126, 4, 126),
            (65_535, 4, 126),
            (65_536, 10, 127),
        ] {
            let mut out = Vec::new();
            put_header(&mut out, OP_TEXT, len, None);
            assert_eq!(out.len(), hdr, "len {len}");
            assert_eq!(header_len(len, false), hdr);
            assert_eq!(out[0], 0x81);
            assert_eq!(out[1], b1);
            let parsed = parse_header(&out).unwrap().unwrap();
            assert_eq!(parsed.payload_len, len as u64);
            assert_eq!(parsed.header_len, hdr);
            assert!(parsed.fin);
            assert_eq!(parsed.mask, None);
        }
    }

    #[test]
    fn masked_frame_round_trips() {
        let key = [1, 2, 3, 4];
        let mut out = Vec::new();
        put_frame(&mut out, OP_CLOSE, &close_payload(CLOSE_NORMAL), Some(key));
        let h = parse_header(&out).unwrap().unwrap();
        assert_eq!(h.opcode, OP_CLOSE);
        assert_eq!(h.mask, Some(key));
        assert_eq!(h.header_len, header_len(2, true));
        let mut payload = out[h.header_len..].to_vec();
        unmask(&mut payload, key);
        assert_eq!(payload, [0x03, 0xE8]);
    }

    #[test]
    fn partial_headers_ask_for_more() {
        let mut out = Vec::new();
        put_header(&mut out, OP_TEXT, 70_000, Some([9; 4]));
        for cut in 0..out.len() {
            assert_eq!(parse_header(&out[..cut]).unwrap(), None, "cut {cut}");
        }
        assert!(parse_header(&out).unwrap().is_some());
    }

    #[test]
    fn bad_headers_are_rejected() {
        assert!(parse_header(&[0xC1, 0]).is_err(), "RSV1 without deflate");
        assert!(parse_header(&[0x83, 0]).is_err(), "opcode 3");
        assert!(parse_header(&[0x09, 0]).is_err(), "fragmented ping");
        assert!(parse_header(&[0x89, 126, 0, 200]).is_err(), "long ping");
    }

    #[test]
    fn upgrade_round_trip() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut req = upgrade_request("127.0.0.1:9", "/x", key).into_bytes();
        req.extend_from_slice(b"\x89\x80abcd");
        assert_eq!(parse_upgrade_request(&req[..10]).unwrap(), None);
        let parsed = parse_upgrade_request(&req).unwrap().unwrap();
        assert_eq!(parsed.path, "/x");
        assert_eq!(parsed.key, key);
        assert_eq!(&req[parsed.consumed..], b"\x89\x80abcd");

        let resp = upgrade_response(key);
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert_eq!(
            parse_upgrade_response(resp.as_bytes(), key).unwrap(),
            Some(resp.len())
        );
        assert!(parse_upgrade_response(resp.as_bytes(), "AAAAAAAAAAAAAAAAAAAAAA==").is_err());
    }

    #[test]
    fn upgrade_request_needs_key_and_upgrade() {
        assert!(parse_upgrade_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_err());
        assert!(parse_upgrade_request(b"POST / HTTP/1.1\r\n\r\n").is_err());
        assert!(
            parse_upgrade_request(
                b"GET / HTTP/1.1\r\nupgrade: WebSocket\r\nsec-websocket-key: abc\r\n\r\n"
            )
            .unwrap()
            .is_some()
        );
    }
}
