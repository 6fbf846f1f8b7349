//! Parsing one line: an envelope record's fields without re-serialising the message (or a
//! snapshot's body), and the details of an event record or of a snapshot's request.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// True if `line` is an envelope record rather than a raw message: every envelope line starts
/// with `{"ts":` and names its stream.
pub fn looks_like_envelope(line: &[u8]) -> bool {
    line.starts_with(b"{\"ts\":") && memchr::memmem::find(line, b",\"stream\":").is_some()
}

/// The `ts` of an envelope line, read from its first bytes without parsing the rest.
pub fn quick_ts(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"ts\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    if end == 0 || end > 20 {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Most bytes [`Payload::content_text`] inflates a gzip message to.
pub const MAX_INFLATED: u64 = 64 << 20;

/// A parsed envelope line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A received message.
    Message(Message<'a>),
    /// A lifecycle event; [`EventDetail::parse`] reads its fields.
    Event(Event<'a>),
    /// A REST snapshot fetched by the recorder (not a WebSocket message: no `seq`).
    Snapshot(Snapshot<'a>),
}

/// A snapshot record: `{"ts":..,"stream":..,"conn":..,"snapshot":{..},"msg":<body>}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// When the response body was complete, ns since the epoch.
    pub ts: u64,
    /// Stream name.
    pub stream: Cow<'a, str>,
    /// The connection it was fetched for.
    pub conn: u64,
    /// The `snapshot` object as written (what the request was); [`SnapshotDetail::parse`]
    /// reads its fields.
    pub request: &'a str,
    /// The response body.
    pub payload: Payload<'a>,
}

/// The fields of a snapshot's `snapshot` object that the tools use (others are ignored).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct SnapshotDetail {
    /// The symbol, as the venue names it.
    pub symbol: Option<String>,
    /// The request URL (secrets masked).
    pub url: Option<String>,
    /// HTTP status.
    pub status: Option<u64>,
    /// When the request was sent (ns).
    pub sent_ts: Option<u64>,
    /// Tries it took (1: the first).
    pub attempts: Option<u64>,
    /// The first update id of the difference the snapshot was fetched for (Binance `U`).
    pub first_id: Option<u64>,
}

impl SnapshotDetail {
    /// Reads a `snapshot` object; unknown or mistyped fields are left out.
    pub fn parse(request: &str) -> Self {
        serde_json::from_str(request).unwrap_or_default()
    }
}

/// A message record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Receive time, ns since the epoch.
    pub ts: u64,
    /// Stream name.
    pub stream: Cow<'a, str>,
    /// Connection number.
    pub conn: u64,
    /// Stream sequence number.
    pub seq: u64,
    /// The message.
    pub payload: Payload<'a>,
}

/// An event record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// When it happened, ns since the epoch.
    pub ts: u64,
    /// Stream name.
    pub stream: Cow<'a, str>,
    /// Connection number.
    pub conn: u64,
    /// `connected`, `subscribed`, `disconnected`, `connect_failed`, `dropped`, ….
    pub name: Cow<'a, str>,
}

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// `msg`: the message text exactly as received (valid JSON).
    Json(&'a str),
    /// `text`: a text message that is not one line of JSON, decoded.
    Text(Cow<'a, str>),
    /// `bin`: a binary message, still base64.
    Binary(Cow<'a, str>),
}

impl Payload<'_> {
    /// The message bytes as received (binary decoded).
    ///
    /// # Errors
    /// `bin` is not valid base64.
    pub fn bytes(&self) -> Result<Cow<'_, [u8]>, base64::DecodeError> {
        use base64::Engine as _;
        Ok(match self {
            Payload::Json(s) => Cow::Borrowed(s.as_bytes()),
            Payload::Text(s) => Cow::Borrowed(s.as_bytes()),
            Payload::Binary(b) => {
                Cow::Owned(base64::engine::general_purpose::STANDARD.decode(b.as_bytes())?)
            }
        })
    }

    /// The message as text for readers of what it says (the book engine): JSON as stored; a
    /// binary message's bytes when they are UTF-8 JSON (Upbit sends JSON in binary frames), or
    /// once inflated when they are gzip (HTX compresses every frame), up to
    /// [`MAX_INFLATED`] bytes; `None` for anything else (protobuf, text that is not JSON).
    pub fn content_text(&self) -> Option<Cow<'_, str>> {
        use std::io::Read as _;
        match self {
            Payload::Json(s) => Some(Cow::Borrowed(s)),
            Payload::Text(_) => None,
            Payload::Binary(_) => {
                let bytes = self.bytes().ok()?.into_owned();
                let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .take(MAX_INFLATED)
                        .read_to_end(&mut out)
                        .ok()?;
                    out
                } else {
                    bytes
                };
                let text = String::from_utf8(bytes).ok()?;
                matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
                    .then_some(Cow::Owned(text))
            }
        }
    }

    /// The message's size in bytes as received, without decoding base64.
    pub fn len(&self) -> usize {
        match self {
            Payload::Json(s) => s.len(),
            Payload::Text(s) => s.len(),
            Payload::Binary(b) => {
                let pad = b.bytes().rev().take_while(|&c| c == b'=').count();
                (b.len() / 4 * 3).saturating_sub(pad)
            }
        }
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Deserialize)]
struct Wire<'a> {
    ts: u64,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    conn: u64,
    seq: Option<u64>,
    #[serde(borrow)]
    msg: Option<&'a RawValue>,
    text: Option<String>,
    bin: Option<String>,
    event: Option<String>,
    #[serde(borrow)]
    snapshot: Option<&'a RawValue>,
}

impl<'a> Entry<'a> {
    /// Parses one envelope line.
    ///
    /// # Errors
    /// A message naming what is wrong (JSON error with column, or a missing field).
    pub fn parse(line: &'a [u8]) -> Result<Entry<'a>, String> {
        let w: Wire<'a> = serde_json::from_slice(line).map_err(|e| {
            let what = e.to_string();
            // serde_json counts the line as 1; the caller knows the real one.
            match what.rsplit_once(" at line 1 column ") {
                Some((m, col)) => format!("{m} at column {col}"),
                None => what,
            }
        })?;
        if let Some(name) = w.event {
            return Ok(Entry::Event(Event {
                ts: w.ts,
                stream: w.stream,
                conn: w.conn,
                name: Cow::Owned(name),
            }));
        }
        if w.seq.is_none() && w.snapshot.is_none() {
            return Err("has neither `seq`, `event` nor `snapshot`".to_owned());
        }
        let payload = match (w.msg, w.text, w.bin) {
            (Some(m), None, None) => Payload::Json(m.get()),
            (None, Some(t), None) => Payload::Text(Cow::Owned(t)),
            (None, None, Some(b)) => Payload::Binary(Cow::Owned(b)),
            (None, None, None) => return Err("has no `msg`, `text` or `bin`".to_owned()),
            _ => return Err("has more than one of `msg`, `text` and `bin`".to_owned()),
        };
        match (w.snapshot, w.seq) {
            (Some(request), _) => {
                let request = request.get();
                if !request.starts_with('{') {
                    return Err("has a `snapshot` that is not an object".to_owned());
                }
                Ok(Entry::Snapshot(Snapshot {
                    ts: w.ts,
                    stream: w.stream,
                    conn: w.conn,
                    request,
                    payload,
                }))
            }
            (None, Some(seq)) => Ok(Entry::Message(Message {
                ts: w.ts,
                stream: w.stream,
                conn: w.conn,
                seq,
                payload,
            })),
            (None, None) => Err("has neither `seq`, `event` nor `snapshot`".to_owned()),
        }
    }

    /// Receive time.
    pub fn ts(&self) -> u64 {
        match self {
            Entry::Message(m) => m.ts,
            Entry::Event(e) => e.ts,
            Entry::Snapshot(s) => s.ts,
        }
    }

    /// Stream name.
    pub fn stream(&self) -> &str {
        match self {
            Entry::Message(m) => &m.stream,
            Entry::Event(e) => &e.stream,
            Entry::Snapshot(s) => &s.stream,
        }
    }

    /// Connection number.
    pub fn conn(&self) -> u64 {
        match self {
            Entry::Message(m) => m.conn,
            Entry::Event(e) => e.conn,
            Entry::Snapshot(s) => s.conn,
        }
    }
}

/// The fields of an event line that the tools use.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct EventDetail {
    /// `disconnected`: why.
    pub reason: Option<String>,
    /// `disconnected`: close code sent by the server.
    pub code: Option<u64>,
    /// `disconnected`: connection lifetime.
    pub duration_ms: Option<u64>,
    /// `dropped`: messages dropped.
    pub count: Option<u64>,
    /// `connected`: recorder process id.
    pub pid: Option<u64>,
    /// `connected`: the connection this one replaces (planned reconnect).
    pub replaces: Option<u64>,
    /// `connected`: the stream's tags (static key/value text from the config); absent when it
    /// has none and in recordings from before tags.
    pub tags: Option<std::collections::BTreeMap<String, String>>,
    /// `connected` of a merged recording: the input its messages come from (`wsrec merge`).
    pub source: Option<String>,
    /// `connect_failed`, `snapshot_failed`: why.
    pub error: Option<String>,
    /// `snapshot_failed`: the symbol whose snapshot could not be fetched.
    pub symbol: Option<String>,
    /// `snapshot_failed`: the request URL (secrets masked).
    pub url: Option<String>,
    /// `snapshot_failed`: the last HTTP status (absent when no answer came).
    pub status: Option<u64>,
    /// `snapshot_failed`: tries made.
    pub attempts: Option<u64>,
    /// `disk_full_gap`, `write_error_gap`: lines not written.
    pub lost: Option<u64>,
    /// `write_error_gap`: event lines not written (markers of losses not included).
    pub lost_events: Option<u64>,
    /// `write_error_gap`: messages the when-full policy dropped whose `dropped` marker was
    /// lost to a write error.
    pub dropped: Option<u64>,
    /// `disk_full_gap`: first receive time not written.
    pub from_ts: Option<u64>,
    /// `disk_full_gap`: last receive time not written.
    pub to_ts: Option<u64>,
    /// `recovered`: bytes of an unfinished last line cut off when a crash's file was repaired.
    pub cut_bytes: Option<u64>,
    /// `recovered`: the repaired file's name.
    pub file: Option<String>,
    /// `recovered`: complete lines the repaired file held (0: nothing was written to it).
    pub lines: Option<u64>,
    /// `recovered`: when the file was last written before the crash (its modification time).
    pub last_write_ts: Option<u64>,
}

impl EventDetail {
    /// Reads the fields of an event line; unknown or mistyped fields are left out.
    pub fn parse(line: &[u8]) -> Self {
        serde_json::from_slice(line).unwrap_or_default()
    }
}
