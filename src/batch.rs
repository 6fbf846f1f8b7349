//! What a connection hands to the writer: a [`Batch`] of received messages, lifecycle events
//! and REST order-book snapshots, in receive order.
//!
//! A connection copies every ready frame's payload into one batch (one buffer, one small item
//! per message) and hands the whole batch over at once through the [`crate::queue`], so the
//! per-message cost of the hand-off is a `memcpy` and a 24-byte push; the writer turns items
//! into lines.

/// What an item of a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A text message (valid UTF-8, checked by the WebSocket layer).
    Text,
    /// A text message the WebSocket layer found to be ASCII without CR or LF: one line as it
    /// is.
    Line,
    /// A binary message.
    Binary,
    /// A lifecycle event; its bytes are JSON object members starting with `"event":`.
    Event,
    /// A REST snapshot: its bytes are the first `fields` bytes, the members of the line's
    /// `snapshot` object each with a leading comma (`,"symbol":"BTCUSDT",…`), then the response
    /// body as received. Not a WebSocket message: it takes no `seq`.
    Snapshot {
        /// Length of the members part.
        fields: u32,
    },
}

impl Kind {
    /// A snapshot item's bytes split into the members of its `snapshot` object and the body;
    /// `None` for other kinds.
    #[inline]
    pub fn snapshot_parts(self, bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        match self {
            Kind::Snapshot { fields } => Some(bytes.split_at((fields as usize).min(bytes.len()))),
            _ => None,
        }
    }

    /// A WebSocket message (text or binary): takes a `seq` and a queue permit, and may be
    /// dropped under `when_full = "drop_newest"`.
    #[inline]
    pub fn is_message(self) -> bool {
        matches!(self, Kind::Text | Kind::Line | Kind::Binary)
    }
}

/// One message or event in a [`Batch`]; its bytes are `data[previous end..end]`.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    /// Receive time, ns since the Unix epoch (UTC).
    pub ts: u64,
    /// End offset of this item's bytes in [`Batch::data`].
    pub end: usize,
    /// What the bytes are.
    pub kind: Kind,
}

/// Messages and events of one connection, in receive order.
#[derive(Debug, Default)]
pub struct Batch {
    /// Index of the stream in the config.
    pub stream: usize,
    /// Connection number within the stream (1, 2, ...).
    pub conn: u64,
    /// Stream sequence number of the first message item; the next ones follow on.
    pub first_seq: u64,
    /// Payload bytes of all items, back to back.
    pub data: Vec<u8>,
    /// The items.
    pub items: Vec<Item>,
    /// Number of message items (events and snapshots not counted).
    pub messages: usize,
    /// Number of snapshot items.
    pub snapshots: usize,
    /// Byte permits this batch holds in the queue (set by [`crate::queue::QueueTx::send`]).
    pub byte_permits: usize,
    /// The batch took its stream's own room in the queue rather than the shared one (set by
    /// [`crate::queue::QueueTx::send`]).
    pub reserved: bool,
}

impl Batch {
    /// An empty batch for a stream's connection.
    pub fn new(stream: usize, conn: u64) -> Self {
        Self {
            stream,
            conn,
            ..Self::default()
        }
    }

    /// True when there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends a received message.
    #[inline]
    pub fn push_message(&mut self, ts: u64, kind: Kind, payload: &[u8]) {
        self.data.extend_from_slice(payload);
        self.items.push(Item {
            ts,
            end: self.data.len(),
            kind,
        });
        self.messages += 1;
    }

    /// Appends an event named `name`; `fields` adds its other members.
    pub fn push_event(&mut self, ts: u64, name: &str, fields: impl FnOnce(&mut EventFields<'_>)) {
        self.data.extend_from_slice(b"\"event\":");
        crate::json::write_json_string(name.as_bytes(), &mut self.data);
        fields(&mut EventFields(&mut self.data));
        self.items.push(Item {
            ts,
            end: self.data.len(),
            kind: Kind::Event,
        });
    }

    /// Appends a REST snapshot received complete at `ts`: `fields` writes the members of its
    /// `snapshot` object (what the request was), `body` is the response body as received. The
    /// body is copied once, as a message's payload is.
    pub fn push_snapshot(
        &mut self,
        ts: u64,
        fields: impl FnOnce(&mut EventFields<'_>),
        body: &[u8],
    ) {
        let start = self.data.len();
        fields(&mut EventFields(&mut self.data));
        // A snapshot object of 4 GiB is not something a builder writes.
        let fields = u32::try_from(self.data.len() - start).unwrap_or(u32::MAX);
        self.data.extend_from_slice(body);
        self.items.push(Item {
            ts,
            end: self.data.len(),
            kind: Kind::Snapshot { fields },
        });
        self.snapshots += 1;
    }

    /// Inserts an event before every other item (used for the `dropped` mark, which belongs
    /// where the gap was, before the messages that follow it).
    pub fn prepend_event(
        &mut self,
        ts: u64,
        name: &str,
        fields: impl FnOnce(&mut EventFields<'_>),
    ) {
        let mut head = Batch::default();
        head.push_event(ts, name, fields);
        let shift = head.data.len();
        self.data.splice(0..0, head.data);
        for item in &mut self.items {
            item.end += shift;
        }
        self.items.insert(0, head.items[0]);
    }

    /// Iterates `(item, bytes)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&Item, &[u8])> {
        let mut start = 0;
        self.items.iter().map(move |item| {
            let bytes = &self.data[start..item.end];
            start = item.end;
            (item, bytes)
        })
    }

    /// The bytes of the last item, if any.
    pub fn last_bytes(&self) -> Option<&[u8]> {
        let last = self.items.last()?;
        let start = self
            .items
            .len()
            .checked_sub(2)
            .map_or(0, |i| self.items[i].end);
        Some(&self.data[start..last.end])
    }

    /// Removes every message, keeping events and snapshots, and returns how many were removed.
    pub(crate) fn strip_messages(&mut self) -> usize {
        let removed = self.messages;
        if removed == 0 {
            return 0;
        }
        let mut data = Vec::new();
        let mut items = Vec::new();
        for (item, bytes) in self.iter().filter(|(i, _)| !i.kind.is_message()) {
            data.extend_from_slice(bytes);
            items.push(Item {
                end: data.len(),
                ..*item
            });
        }
        self.data = data;
        self.items = items;
        self.messages = 0;
        removed
    }
}

/// Writes the members of an event object after its `"event"` member (or of a snapshot's
/// `snapshot` object), each with a leading comma.
pub struct EventFields<'a>(&'a mut Vec<u8>);

impl EventFields<'_> {
    fn key(&mut self, key: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    /// A string member (escaped).
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        crate::json::write_json_string(value.as_bytes(), self.0);
        self
    }

    /// An unsigned integer member.
    pub fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// An object of string members, in the order given.
    pub fn str_map<'s>(
        &mut self,
        key: &str,
        members: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> &mut Self {
        self.key(key);
        self.0.push(b'{');
        for (i, (k, v)) in members.into_iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            crate::json::write_json_string(k.as_bytes(), self.0);
            self.0.push(b':');
            crate::json::write_json_string(v.as_bytes(), self.0);
        }
        self.0.push(b'}');
        self
    }

    /// An array of strings.
    pub fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.key(key);
        self.0.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            crate::json::write_json_string(v.as_bytes(), self.0);
        }
        self.0.push(b']');
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A batch of a `connected` event and `n` text messages.
    pub(crate) fn batch_of(n: usize) -> Batch {
        let mut b = Batch::new(0, 1);
        b.push_event(1, "connected", |f| {
            f.str("url", "ws://x/").num("pid", 7);
        });
        for i in 0..n {
            b.push_message(2, Kind::Text, format!("{{\"i\":{i}}}").as_bytes());
        }
        b
    }

    #[test]
    fn items_slice_their_bytes() {
        let b = batch_of(2);
        let got: Vec<(Kind, String)> = b
            .iter()
            .map(|(i, s)| (i.kind, String::from_utf8(s.to_vec()).unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    Kind::Event,
                    r#""event":"connected","url":"ws://x/","pid":7"#.to_owned()
                ),
                (Kind::Text, r#"{"i":0}"#.to_owned()),
                (Kind::Text, r#"{"i":1}"#.to_owned()),
            ]
        );
        assert_eq!(b.messages, 2);
    }

    #[test]
    fn snapshots_keep_their_parts_and_survive_a_strip() {
        let mut b = batch_of(1);
        b.push_snapshot(
            3,
            |f| {
                f.str("symbol", "BTCUSDT").num("status", 200);
            },
            b"{\"lastUpdateId\":7}",
        );
        b.push_message(4, Kind::Text, b"{}");
        assert_eq!((b.messages, b.snapshots), (2, 1));
        assert_eq!(b.strip_messages(), 2);
        let kept: Vec<(&[u8], &[u8])> = b
            .iter()
            .filter_map(|(i, bytes)| i.kind.snapshot_parts(bytes))
            .collect();
        assert_eq!(
            kept,
            [(
                &br#","symbol":"BTCUSDT","status":200"#[..],
                &br#"{"lastUpdateId":7}"#[..]
            )]
        );
        assert_eq!(b.items.len(), 2, "the event and the snapshot stay");
        assert_eq!((b.messages, b.snapshots), (0, 1));
    }
}
