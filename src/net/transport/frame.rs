//! WebSocket frames as a client reads them (RFC 6455 5, permessage-deflate of RFC 7692), cut
//! out of the bytes at the front of the read buffer without a copy, and the few frames a
//! client writes. No I/O here: [`Reader::step`] looks at bytes, [`encode`] appends bytes; the
//! socket ([`super::Socket`]) reads, writes and answers. Public for the fuzz target
//! (`fuzz/fuzz_targets/frames.rs`).
//!
//! Why not the WebSocket library's reader: every library at hand (yawc, tungstenite,
//! fastwebsockets) hands each message out as a buffer of its own, so a message costs an
//! allocation or reference-count traffic and a copy before wsrec copies it into its batch. In
//! a profile of a flood of 200-byte messages that bookkeeping and yawc's framing took ~28 % of
//! the recorder's CPU (README, Performance). Here a message that came in one uncompressed frame
//! (nearly all of them) is a range of the read buffer, copied once, into the batch. Fragmented
//! and compressed messages are put together in the reader's own buffer.
//!
//! Checked as RFC 6455 says a client must ("fail the WebSocket connection"): a masked frame
//! (5.1), a 64-bit length with its top bit set (5.2), reserved bits no extension uses (5.2),
//! an unknown opcode, a fragmented or oversized control frame (5.5), a continuation with no
//! message to continue or a new message inside a fragmented one (5.4), text that is not UTF-8
//! (8.1), a close frame with a bad code or reason (5.5.1, 7.4); and RSV1 outside the first
//! frame of a data message, or without permessage-deflate negotiated (RFC 7692 6). A message
//! over `max_message_size`, announced by a header, grown by fragments or inflated, ends the
//! connection as soon as it is known to be too large, before its bytes are held.

use std::ops::Range;

use flate2::{Decompress, FlushDecompress, Status};

/// Largest payload of a control frame (RFC 6455 5.5).
const MAX_CONTROL: usize = 125;
/// What RFC 7692 7.2.2 has the receiver append to a compressed message before inflating it.
const DEFLATE_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
/// An assembled-message buffer larger than this is given back once its message is taken.
const KEEP_MESSAGE_BUFFER: usize = 1 << 20;

/// Why the reader gave up on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A message larger than `max_message_size` (close code 1009).
    TooLarge,
    /// The server broke the protocol; the text says how (close code `.0`, 1002 or 1007).
    Broken(u16, String),
}

impl Fault {
    fn protocol(what: impl Into<String>) -> Fault {
        Fault::Broken(1002, what.into())
    }

    /// The close code a client sends when it fails the connection for this fault.
    pub fn close_code(&self) -> u16 {
        match self {
            Fault::TooLarge => 1009,
            Fault::Broken(code, _) => *code,
        }
    }
}

/// Why a masked frame ends the connection.
pub const MASKED_FRAME: &str = "server sent a masked frame; RFC 6455 5.1 forbids masking \
                                       from server to client, so the connection was dropped \
                                       rather than recording scrambled bytes";
/// Why a 2^63 length ends the connection.
pub const LENGTH_TOP_BIT: &str = "server sent a frame header whose 64-bit length has the \
                                         top bit set (2^63 bytes or more; RFC 6455 5.2 forbids it)";
/// Why text that is not UTF-8 ends the connection.
pub const NOT_UTF8: &str = "server sent a text message that is not valid UTF-8 (RFC 6455 \
                                   8.1); closed with code 1007";

/// A data message's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    Text,
    /// A text message found to be ASCII without CR or LF: one line as it is (the raw format
    /// then needs no search for line breaks). Only in what [`Reader::step`] returns.
    Line,
    Binary,
}

/// What one frame amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// A whole message in one plain frame: its payload is at `range` of the bytes stepped over.
    InPlace(Data, Range<usize>),
    /// A whole message put together in the reader's buffer ([`Reader::message`]).
    Assembled(Data),
    /// A fragment of a message still going on.
    Fragment,
    /// A ping, its payload at `range` of the bytes stepped over.
    Ping(Range<usize>),
    /// A pong.
    Pong,
    /// A close frame: its code (if it had one) and reason.
    Close(Option<u16>, String),
}

/// What [`Reader::step`] found at the front of the bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// No whole frame yet: the bytes must grow to at least this many (the header's size while
    /// it is incomplete, then header and payload).
    More(usize),
    /// A frame of `.0` bytes was taken.
    Took(usize, Got),
}

/// The state of a connection's incoming frames between steps.
pub struct Reader {
    /// `max_message_size`.
    max: usize,
    /// The inflater, when permessage-deflate is in force. One for the connection, never reset:
    /// with context takeover the server's messages refer back into earlier ones; without it
    /// they refer to nothing before them, which the same inflater reads just as well. Its
    /// 15-bit window reads every window size a server may use.
    inflate: Option<Decompress>,
    /// The message being put together (fragments, or inflated bytes).
    message: Vec<u8>,
    /// The fragmented message under way: its type, and whether it is compressed.
    partial: Option<(Data, bool)>,
}

impl Reader {
    /// A reader of messages up to `max` bytes; `deflate`: permessage-deflate is in force.
    pub fn new(max: usize, deflate: bool) -> Reader {
        Reader {
            max,
            inflate: deflate.then(|| Decompress::new(false)),
            message: Vec::new(),
            partial: None,
        }
    }

    /// The message of the latest [`Got::Assembled`].
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Takes the frame at the front of `bytes`, if it is all there.
    ///
    /// # Errors
    /// A [`Fault`]: the connection must end. Frames before the faulty one were taken by
    /// earlier steps, so every message before the fault is delivered.
    pub fn step(&mut self, bytes: &[u8]) -> Result<Step, Fault> {
        let Some(&[b0, b1]) = bytes.get(..2) else {
            return Ok(Step::More(2));
        };
        if b1 & 0x80 != 0 {
            return Err(Fault::protocol(MASKED_FRAME));
        }
        let (len, header) = match b1 & 0x7f {
            126 => match bytes.get(2..4) {
                Some(n) => (u64::from(u16::from_be_bytes([n[0], n[1]])), 4),
                None => return Ok(Step::More(4)),
            },
            127 => match bytes.get(2..10) {
                Some(n) => {
                    let len = u64::from_be_bytes(n.try_into().expect("8 bytes"));
                    if len >> 63 != 0 {
                        return Err(Fault::protocol(LENGTH_TOP_BIT));
                    }
                    (len, 10)
                }
                None => return Ok(Step::More(10)),
            },
            n => (u64::from(n), 2),
        };
        let fin = b0 & 0x80 != 0;
        let compressed = b0 & 0x40 != 0;
        if b0 & 0x30 != 0 {
            return Err(Fault::protocol(
                "server set reserved frame bits (RSV2/RSV3) that no negotiated extension uses",
            ));
        }
        let opcode = b0 & 0x0f;
        match opcode {
            0..=2 => self.check_data(opcode, compressed, len)?,
            8..=10 => check_control(fin, compressed, len)?,
            op => {
                return Err(Fault::protocol(format!(
                    "server sent a frame with the unknown opcode {op}"
                )));
            }
        }
        // `len` is at most `max` (data) or 125 (control) here, so it fits in usize.
        let end = header + len as usize;
        let Some(payload) = bytes.get(header..end) else {
            return Ok(Step::More(end));
        };
        let got = match opcode {
            8 => close(payload)?,
            9 => Got::Ping(header..end),
            10 => Got::Pong,
            0 => self.continue_message(fin, payload)?,
            _ => {
                let data = if opcode == 1 {
                    Data::Text
                } else {
                    Data::Binary
                };
                if fin && !compressed {
                    Got::InPlace(checked(data, payload)?, header..end)
                } else {
                    if self.message.capacity() > KEEP_MESSAGE_BUFFER {
                        self.message = Vec::new();
                    }
                    self.message.clear();
                    self.partial = Some((data, compressed));
                    self.continue_message(fin, payload)?
                }
            }
        };
        Ok(Step::Took(end, got))
    }

    /// Checks a data frame's header against the message state and the size limit.
    fn check_data(&self, opcode: u8, compressed: bool, len: u64) -> Result<(), Fault> {
        match (opcode, self.partial) {
            (0, None) => {
                return Err(Fault::protocol(
                    "protocol error by the server: a continuation frame with no fragmented \
                     message to continue (RFC 6455 5.4)",
                ));
            }
            (1 | 2, Some(_)) => {
                return Err(Fault::protocol(
                    "protocol error by the server: a new message began inside a fragmented one \
                     (RFC 6455 5.4)",
                ));
            }
            _ => {}
        }
        if compressed {
            if self.inflate.is_none() {
                return Err(Fault::protocol(
                    "server sent a compressed frame (RSV1) although permessage-deflate was not \
                     negotiated",
                ));
            }
            if opcode == 0 {
                return Err(Fault::protocol(
                    "protocol error by the server: RSV1 set on a continuation frame (RFC 7692 6)",
                ));
            }
        }
        // A plain message's size is known from its headers; a compressed one's only from its
        // inflated bytes (`inflate`), though a frame too large for the buffer is refused too.
        let held = if opcode == 0 { self.message.len() } else { 0 };
        let plain = !matches!(self.partial, Some((_, true))) && !compressed;
        let too_large = if plain {
            len.saturating_add(held as u64) > self.max as u64
        } else {
            len > self.max as u64
        };
        if too_large {
            return Err(Fault::TooLarge);
        }
        Ok(())
    }

    /// Adds a fragment's payload to the message under way; the message if `fin` ends it.
    fn continue_message(&mut self, fin: bool, payload: &[u8]) -> Result<Got, Fault> {
        let Some((data, compressed)) = self.partial else {
            unreachable!("check_data refuses a continuation without a message")
        };
        if compressed {
            let inflate = self
                .inflate
                .as_mut()
                .expect("check_data saw deflate in force");
            let ended = inflate_into(inflate, payload, &mut self.message, self.max)?;
            if fin && !ended {
                inflate_into(inflate, &DEFLATE_TAIL, &mut self.message, self.max)?;
            }
        } else {
            self.message.extend_from_slice(payload);
        }
        if !fin {
            return Ok(Got::Fragment);
        }
        self.partial = None;
        Ok(Got::Assembled(checked(data, &self.message)?))
    }
}

/// A whole message's type, its text checked: [`Data::Line`] for text that is ASCII without CR
/// or LF, [`Data::Text`] for other UTF-8.
///
/// # Errors
/// Text that is not UTF-8 (RFC 6455 8.1, close code 1007).
#[inline]
fn checked(data: Data, bytes: &[u8]) -> Result<Data, Fault> {
    if data == Data::Binary {
        return Ok(data);
    }
    if one_ascii_line(bytes) {
        return Ok(Data::Line);
    }
    match simdutf8::basic::from_utf8(bytes) {
        Ok(_) => Ok(Data::Text),
        Err(_) => Err(Fault::Broken(1007, NOT_UTF8.to_owned())),
    }
}

/// Whether `bytes` are all ASCII and hold no CR or LF: one pass that spares exchange messages
/// (nearly all of them ASCII JSON on one line) both the UTF-8 check and the raw format's search
/// for line breaks. On x86-64, 16 bytes a step with SSE2 (part of every x86-64 CPU).
#[inline]
pub fn one_ascii_line(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() >= 16 {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is in the x86-64 baseline; every load reads 16 bytes inside `bytes`
        // (the last one ends at its end, overlapping the loop's last load).
        unsafe {
            let (lf, cr) = (_mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'\r' as i8));
            // A byte's top bit is set where it is not ASCII, or (after the compares) where it
            // is a line break.
            let flag = |v: __m128i| {
                _mm_or_si128(
                    v,
                    _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)),
                )
            };
            let at = |i: usize| _mm_loadu_si128(bytes.as_ptr().add(i).cast());
            let mut bad = flag(at(bytes.len() - 16));
            let mut i = 0;
            while i + 16 <= bytes.len() {
                bad = _mm_or_si128(bad, flag(at(i)));
                i += 16;
            }
            return _mm_movemask_epi8(bad) == 0;
        }
    }
    bytes.iter().all(|&b| b < 0x80 && b != b'\n' && b != b'\r')
}

/// Checks a control frame's header (RFC 6455 5.5; RFC 7692 6.1 for RSV1).
fn check_control(fin: bool, compressed: bool, len: u64) -> Result<(), Fault> {
    if !fin {
        return Err(Fault::protocol(
            "protocol error by the server: a fragmented control frame (RFC 6455 5.5)",
        ));
    }
    if len > MAX_CONTROL as u64 {
        return Err(Fault::protocol(format!(
            "protocol error by the server: a control frame of {len} bytes, above the 125 of \
             RFC 6455 5.5"
        )));
    }
    if compressed {
        return Err(Fault::protocol(
            "protocol error by the server: RSV1 set on a control frame (RFC 7692 6.1)",
        ));
    }
    Ok(())
}

/// A close frame's code and reason (RFC 6455 5.5.1, 7.4).
fn close(payload: &[u8]) -> Result<Got, Fault> {
    let (code, reason) = match payload {
        [] => return Ok(Got::Close(None, String::new())),
        [_] => {
            return Err(Fault::protocol(
                "protocol error by the server: a close frame with a 1-byte payload (RFC 6455 \
                 5.5.1)",
            ));
        }
        [a, b, reason @ ..] => (u16::from_be_bytes([*a, *b]), reason),
    };
    // 1000-1003 and 1007-1014 are defined (RFC 6455 7.4.1 and the IANA registry), 3000-4999
    // are for libraries and applications; 1004-1006 and 1015 must never be sent.
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(Fault::protocol(format!(
            "protocol error by the server: a close frame with the invalid code {code} (RFC 6455 \
             7.4)"
        )));
    }
    match std::str::from_utf8(reason) {
        Ok(r) => Ok(Got::Close(Some(code), r.to_owned())),
        Err(_) => Err(Fault::Broken(
            1007,
            "protocol error by the server: a close reason that is not UTF-8 (RFC 6455 5.5.1)"
                .to_owned(),
        )),
    }
}

/// Inflates `input` onto the end of `out`, which may not grow past `max` bytes. Returns whether
/// the server ended its deflate stream with this input (a final block: the message then takes
/// no tail, and the next one starts a new stream).
fn inflate_into(
    inflate: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool, Fault> {
    loop {
        if out.len() == out.capacity() {
            // Room for one byte past `max`, so that a message of `max + 1` bytes shows.
            let room = (max + 1).saturating_sub(out.len());
            if room == 0 {
                return Err(Fault::TooLarge);
            }
            out.reserve(room.min(out.len().max(input.len() * 4).clamp(4096, 1 << 20)));
        }
        let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|e| {
                Fault::protocol(format!(
                    "server sent permessage-deflate data that does not inflate ({e})"
                ))
            })?;
        if out.len() > max {
            return Err(Fault::TooLarge);
        }
        let used = (inflate.total_in() - before_in) as usize;
        let made = inflate.total_out() - before_out;
        input = &input[used..];
        if status == Status::StreamEnd {
            // The server ended the deflate stream (a final block, RFC 7692 7.2.3.4): what it
            // sends next starts a new one. The tail after a final block is not part of it.
            inflate.reset(false);
            if input.is_empty() || input == DEFLATE_TAIL {
                return Ok(true);
            }
            continue;
        }
        if input.is_empty() && out.len() < out.capacity() {
            // All input taken, and room was left: nothing more is pending.
            return Ok(false);
        }
        if used == 0 && made == 0 && out.len() < out.capacity() {
            return Err(Fault::protocol(
                "server sent permessage-deflate data that does not inflate (no progress)",
            ));
        }
    }
}

/// Appends a client frame (`fin`, `opcode`, masked as RFC 6455 5.3 requires of a client) to
/// `out`, masked with `key`.
pub fn encode(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
}

/// A close frame's payload: `code`, then as much of `reason` as fits in a control frame
/// (cut at a character boundary).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut cut = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..cut]);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// A server frame: `fin`, `rsv1`, opcode, the length in its shortest form, unmasked.
    fn frame_with(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame_with(true, false, opcode, payload)
    }

    /// What a reader makes of `stream` fed `step` bytes more at a time, as the socket does
    /// (frames taken from the front, the rest kept): each message's type and bytes, pings,
    /// pongs and closes, and the fault that stopped it, if one did.
    fn read_all(
        reader: &mut Reader,
        stream: &[u8],
        step: usize,
    ) -> (Vec<(String, Vec<u8>)>, Option<Fault>) {
        let mut got = Vec::new();
        let mut start = 0;
        let mut have = 0;
        loop {
            match reader.step(&stream[start..have]) {
                Ok(Step::Took(used, g)) => {
                    let at = start;
                    start += used;
                    let bytes = |r: Range<usize>| stream[at + r.start..at + r.end].to_vec();
                    let item = match g {
                        Got::InPlace(d, r) => (kind(d, &bytes(r.clone())), bytes(r)),
                        Got::Assembled(d) => (kind(d, reader.message()), reader.message().to_vec()),
                        Got::Fragment => continue,
                        Got::Ping(r) => ("Ping".to_owned(), bytes(r)),
                        Got::Pong => ("Pong".to_owned(), Vec::new()),
                        Got::Close(code, reason) => (format!("Close {code:?}"), reason.into()),
                    };
                    got.push(item);
                }
                Ok(Step::More(need)) => {
                    assert!(
                        need > have - start,
                        "asked for {need} with {}",
                        have - start
                    );
                    if have == stream.len() {
                        return (got, None);
                    }
                    have = (have + step).min(stream.len());
                }
                Err(f) => return (got, Some(f)),
            }
        }
    }

    /// "Text" or "Binary"; a text message must be [`Data::Line`] exactly when it is ASCII
    /// without line breaks.
    fn kind(data: Data, bytes: &[u8]) -> String {
        let line = bytes.iter().all(|&b| b < 0x80 && b != b'\n' && b != b'\r');
        match data {
            Data::Binary => "Binary",
            Data::Line if line => "Text",
            Data::Text if !line => "Text",
            _ => panic!("{data:?} for {bytes:?}"),
        }
        .to_owned()
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&DEFLATE_TAIL));
        out.truncate(out.len() - 4);
        out
    }

    fn text(s: &str) -> (String, Vec<u8>) {
        ("Text".to_owned(), s.as_bytes().to_vec())
    }

    #[test]
    fn messages_of_every_size_and_kind_come_out_whole_however_the_bytes_are_split() {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let body = vec![b'a' + (len % 26) as u8; len];
            stream.extend(frame(2, &body));
            want.push(("Binary".to_owned(), body.clone()));
            stream.extend(frame(1, &body));
            want.push(("Text".to_owned(), body));
            stream.extend(frame(9, b"ping"));
            want.push(("Ping".to_owned(), b"ping".to_vec()));
        }
        // A fragmented text message with a ping between its fragments (RFC 6455 5.4).
        stream.extend(frame_with(false, false, 1, "caf".as_bytes()));
        stream.extend(frame(10, b""));
        stream.extend(frame_with(false, false, 0, &"é".as_bytes()[..1]));
        stream.extend(frame_with(true, false, 0, &"é!".as_bytes()[1..]));
        want.push(("Pong".to_owned(), Vec::new()));
        want.push(text("café!"));
        let mut close = 1001u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        stream.extend(frame(8, &close));
        want.push(("Close Some(1001)".to_owned(), b"bye".to_vec()));
        for step in [1, 2, 3, 7, 13, 14, 1000, stream.len()] {
            let mut r = Reader::new(1 << 20, false);
            assert_eq!(
                read_all(&mut r, &stream, step),
                (want.clone(), None),
                "{step}"
            );
        }
    }

    #[test]
    fn compressed_messages_inflate_with_and_without_context_takeover() {
        // With context takeover: one compressor for all, later messages refer to earlier ones.
        let mut c = Compress::new(Compression::default(), false);
        let mut stream = Vec::new();
        let msgs = ["{\"px\":\"101.5\",\"qty\":\"3\"}"; 4];
        for m in msgs {
            let mut out = Vec::with_capacity(256);
            c.compress_vec(m.as_bytes(), &mut out, FlushCompress::Sync)
                .unwrap();
            out.truncate(out.len() - 4);
            stream.extend(frame_with(true, true, 1, &out));
        }
        // A compressed message in three fragments, RSV1 on the first only.
        let big = "0123456789".repeat(50);
        let z = deflate(big.as_bytes());
        let (a, rest) = z.split_at(z.len() / 3);
        let (b, c2) = rest.split_at(rest.len() / 2);
        stream.extend(frame_with(false, true, 1, a));
        stream.extend(frame_with(false, false, 0, b));
        stream.extend(frame_with(true, false, 0, c2));
        // An uncompressed message between compressed ones is fine.
        stream.extend(frame(1, b"plain"));
        let mut want: Vec<_> = msgs.iter().map(|m| text(m)).collect();
        want.push(text(&big));
        want.push(text("plain"));
        for step in [1, 5, stream.len()] {
            let mut r = Reader::new(1 << 20, true);
            assert_eq!(
                read_all(&mut r, &stream, step),
                (want.clone(), None),
                "{step}"
            );
        }
    }

    #[test]
    fn a_deflate_stream_the_server_ends_with_a_final_block_is_followed_by_a_new_one() {
        let mut stream = Vec::new();
        for m in ["first", "second"] {
            let mut c = Compress::new(Compression::default(), false);
            let mut out = Vec::with_capacity(64);
            c.compress_vec(m.as_bytes(), &mut out, FlushCompress::Finish)
                .unwrap();
            stream.extend(frame_with(true, true, 1, &out));
        }
        let mut r = Reader::new(1 << 20, true);
        assert_eq!(
            read_all(&mut r, &stream, stream.len()),
            (vec![text("first"), text("second")], None)
        );
    }

    /// The fault `bad` brings after a good message to a fresh reader of messages up to 1,000
    /// bytes (`deflate`: with permessage-deflate), the same however the bytes are split, and
    /// that the good message came first.
    fn fault_after_good(deflate: bool, bad: &[u8]) -> Fault {
        let mut stream = frame(1, b"good");
        stream.extend_from_slice(bad);
        let mut faults = [1, 2, stream.len()].map(|step| {
            let (got, fault) = read_all(&mut Reader::new(1000, deflate), &stream, step);
            assert_eq!(got, [text("good")], "{step}");
            fault.unwrap_or_else(|| panic!("{step}: no fault for {bad:?}"))
        });
        assert!(faults.iter().all(|f| *f == faults[0]), "{faults:?}");
        std::mem::replace(&mut faults[0], Fault::TooLarge)
    }

    fn broken(deflate: bool, bad: &[u8]) -> (u16, String) {
        match fault_after_good(deflate, bad) {
            Fault::Broken(code, why) => (code, why),
            Fault::TooLarge => panic!("too large, not broken: {bad:?}"),
        }
    }

    #[test]
    fn protocol_faults_end_the_connection_after_the_messages_before_them() {
        let mut masked = vec![0x81, 0x85, 1, 2, 3, 4];
        masked.extend_from_slice(b"xxxxx");
        assert_eq!(broken(false, &masked), (1002, MASKED_FRAME.to_owned()));
        let mut top = vec![0x82, 127];
        top.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(broken(false, &top).1, LENGTH_TOP_BIT);
        assert_eq!(broken(false, &frame(1, b"ok\xff")), (1007, NOT_UTF8.into()));
        let mut split = frame_with(false, false, 1, b"caf\xc3");
        split.extend(frame(0, b"("));
        assert_eq!(broken(false, &split).0, 1007);
        let cases: [(Vec<u8>, &str); 10] = [
            (frame(3, b"?"), "unknown opcode 3"),
            (frame(0x0b, b""), "unknown opcode 11"),
            (
                frame_with(false, false, 9, b"half"),
                "fragmented control frame",
            ),
            (frame(9, &[0; 126]), "control frame of 126 bytes"),
            (
                frame(0, b"x"),
                "continuation frame with no fragmented message",
            ),
            (
                [frame_with(false, false, 1, b"a"), frame(1, b"b")].concat(),
                "new message began inside",
            ),
            (
                frame_with(true, true, 1, b"zz"),
                "permessage-deflate was not negotiated",
            ),
            (vec![0x91, 0], "reserved frame bits"),
            (frame(8, &[3]), "1-byte payload"),
            (frame(8, &1005u16.to_be_bytes()), "invalid code 1005"),
        ];
        for (bad, why) in cases {
            let (code, text) = broken(false, &bad);
            assert!(text.contains(why), "{why:?} not in {text:?}");
            assert_eq!(code, 1002, "{why}");
        }
        let rsv1_continuation = [
            frame_with(false, true, 1, &deflate(b"a")),
            frame_with(true, true, 0, b""),
        ]
        .concat();
        assert!(broken(true, &rsv1_continuation).1.contains("continuation"));
        assert!(
            broken(true, &frame_with(true, true, 9, b""))
                .1
                .contains("control")
        );
        assert!(
            broken(true, &frame_with(true, true, 1, b"\xff\xff"))
                .1
                .contains("inflate")
        );
    }

    #[test]
    fn a_message_over_the_limit_is_refused_however_it_grows() {
        // Announced by a header: refused before its payload arrives.
        let mut big = vec![0x82, 126];
        big.extend_from_slice(&1001u16.to_be_bytes());
        assert_eq!(fault_after_good(true, &big), Fault::TooLarge);
        assert_eq!(
            Reader::new(1000, false)
                .step(&[0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(Fault::TooLarge)
        );
        // Grown by fragments.
        let frags = [frame_with(false, false, 2, &[0; 600]), frame(0, &[0; 401])].concat();
        assert_eq!(fault_after_good(true, &frags), Fault::TooLarge);
        // Inflated: a few bytes on the wire, 2,000 inflated; in one frame and in fragments.
        let bomb = deflate(&[0; 2000]);
        assert!(bomb.len() < 100);
        assert_eq!(
            fault_after_good(true, &frame_with(true, true, 2, &bomb)),
            Fault::TooLarge
        );
        let (a, b) = bomb.split_at(bomb.len() / 2);
        let parts = [frame_with(false, true, 2, a), frame_with(true, false, 0, b)].concat();
        assert_eq!(fault_after_good(true, &parts), Fault::TooLarge);
        // Exactly at the limit is fine, plain and inflated.
        let mut at = Reader::new(1000, true);
        let exact = [
            frame(2, &[7; 1000]),
            frame_with(true, true, 2, &deflate(&[7; 1000])),
        ]
        .concat();
        let (got, fault) = read_all(&mut at, &exact, exact.len());
        assert_eq!(fault, None);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, b)| b.len() == 1000));
    }

    #[test]
    fn one_ascii_line_is_false_for_any_line_break_or_non_ascii_byte_wherever_it_is() {
        for len in 0..80 {
            let line = vec![b'a'; len];
            assert!(one_ascii_line(&line), "{len}");
            for at in 0..len {
                for bad in [b'\n', b'\r', 0x80, 0xc3, 0xff] {
                    let mut b = line.clone();
                    b[at] = bad;
                    assert!(!one_ascii_line(&b), "{len} {at} {bad}");
                }
            }
        }
        // Every ASCII byte but the two breaks is fine, controls and DEL included.
        let all: Vec<u8> = (0..0x80).filter(|b| *b != b'\n' && *b != b'\r').collect();
        assert!(one_ascii_line(&all));
    }

    #[test]
    fn text_is_told_apart_as_one_ascii_line_or_other_utf8() {
        let mut r = Reader::new(1000, false);
        let cases: [(&[u8], Data); 4] = [
            (br#"{"px":"1.5","q":[1,2]}"#, Data::Line),
            ("{\"name\":\"caf\u{e9}\"}".as_bytes(), Data::Text),
            (b"two\nlines", Data::Text),
            (b"ends with a CR\r", Data::Text),
        ];
        for (text, want) in cases {
            let f = frame(1, text);
            assert_eq!(
                r.step(&f),
                Ok(Step::Took(f.len(), Got::InPlace(want, 2..f.len())))
            );
            let first = frame_with(false, false, 1, &text[..3]);
            assert_eq!(r.step(&first), Ok(Step::Took(first.len(), Got::Fragment)));
            let last = frame(0, &text[3..]);
            assert_eq!(
                r.step(&last),
                Ok(Step::Took(last.len(), Got::Assembled(want)))
            );
            assert_eq!(r.message(), text);
        }
        let f = frame(2, b"binary\n");
        assert_eq!(
            r.step(&f),
            Ok(Step::Took(f.len(), Got::InPlace(Data::Binary, 2..f.len())))
        );
    }

    #[test]
    fn close_frames_say_code_and_reason_and_an_empty_one_says_neither() {
        let mut r = Reader::new(1000, false);
        assert_eq!(
            r.step(&frame(8, b"")),
            Ok(Step::Took(2, Got::Close(None, String::new())))
        );
        for code in [1000u16, 1001, 1011, 1012, 1013, 1014, 3000, 4999] {
            let f = frame(8, &close_payload(code, "x"));
            assert_eq!(
                r.step(&f),
                Ok(Step::Took(f.len(), Got::Close(Some(code), "x".to_owned())))
            );
        }
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(r.step(&frame(8, &code.to_be_bytes())).is_err(), "{code}");
        }
    }

    #[test]
    fn client_frames_are_masked_and_read_back_unmasked() {
        for len in [0usize, 5, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode(&mut out, 1, &payload, [9, 8, 7, 6]);
            assert_eq!(out[0], 0x81);
            assert_ne!(out[1] & 0x80, 0, "mask bit");
            let (ext, header) = match out[1] & 0x7f {
                126 => (2, 8),
                127 => (8, 14),
                n => {
                    assert_eq!(usize::from(n), len);
                    (0, 6)
                }
            };
            assert_eq!(out.len(), header + len, "{ext}");
            let key = &out[header - 4..header];
            let unmasked: Vec<u8> = out[header..]
                .iter()
                .zip(key.iter().cycle())
                .map(|(b, k)| b ^ k)
                .collect();
            assert_eq!(unmasked, payload);
        }
        // A long reason is cut to fit a control frame, at a character boundary.
        let p = close_payload(1000, &"é".repeat(100));
        assert_eq!(p.len(), 124);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }
}
