//! What travels from a connection to the writer: batches of received messages and lifecycle
//! events, and the bounded queue they travel through.
//!
//! A connection copies every ready frame's payload into one [`Batch`] (one buffer, one small
//! item per message) and hands the whole batch over at once, so the per-message cost of the
//! hand-off is a `memcpy` and a 24-byte push; the writer turns items into lines. The queue is
//! bounded in messages by a semaphore: a batch of `n` messages takes `n` permits, which the writer
//! gives back after writing it. Events take no permits: they are few, and never dropped.
//! Under `when_full = "block"` the queue is also bounded in payload bytes ([`QUEUE_BYTES`]), so
//! large frames cannot make 16,384 queued messages hold hundreds of MiB; waiting costs no
//! data there. Under `drop_newest` only the message bound applies, so the byte bound never
//! makes it drop more.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};

use crate::config::WhenFull;

/// Most payload bytes queued at once under `block` (a batch larger than this still passes,
/// alone). 256 KiB is ~0.5 ms of a 500 MB/s flood: four 64 KiB batches of slack for the
/// writer, which on the default single runtime thread runs whenever the connection yields.
/// (512 KiB, with six spare buffers, cost 0.7-1.2 MiB more peak RSS for no speed.)
pub const QUEUE_BYTES: usize = 256 * 1024;
/// Written batches' buffers kept for reuse (see [`QueueTx::batch`]).
const SPARE_BATCHES: usize = 4;
/// Buffers smaller than this are not worth keeping: a quiet connection allocates its few
/// bytes itself.
const SPARE_MIN: usize = 16 * 1024;
/// Buffers larger than this (grown by big frames) are freed, not kept.
const SPARE_MAX: usize = 256 * 1024;

/// Buffers of written batches, cleared, for the next busy batch. Allocating and freeing a
/// 64 KiB batch per hand-off made glibc trim and re-fault the pages every time (twice the
/// page faults of the whole run); reused buffers stay warm.
#[derive(Debug, Default)]
struct Spares(Mutex<Vec<(Vec<u8>, Vec<Item>)>>);

impl Spares {
    fn take(&self) -> Option<(Vec<u8>, Vec<Item>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put(&self, mut data: Vec<u8>, mut items: Vec<Item>) {
        if !(SPARE_MIN..=SPARE_MAX).contains(&data.capacity()) {
            return;
        }
        let mut spares = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if spares.len() < SPARE_BATCHES {
            data.clear();
            items.clear();
            spares.push((data, items));
        }
    }
}

/// What an item of a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A text message (valid UTF-8, checked by the WebSocket layer).
    Text,
    /// A binary message.
    Binary,
    /// A lifecycle event; its bytes are JSON object members starting with `"event":`.
    Event,
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
    /// Number of message (non-event) items.
    pub messages: usize,
    /// Byte permits this batch holds in the queue (set by [`QueueTx::send`]).
    pub byte_permits: usize,
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

    /// Removes every message, keeping events, and returns how many were removed.
    fn strip_messages(&mut self) -> usize {
        let removed = self.messages;
        if removed == 0 {
            return 0;
        }
        let mut data = Vec::new();
        let mut items = Vec::new();
        for (item, bytes) in self.iter().filter(|(i, _)| i.kind == Kind::Event) {
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

/// Writes the members of an event object after its `"event"` member.
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

/// What happened to a batch handed to [`QueueTx::send`].
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// Queued whole.
    All,
    /// The queue was full under `drop_newest`: this many messages were dropped; the batch's
    /// events were still queued.
    Dropped(usize),
    /// The writer is gone; nothing was queued.
    Closed,
}

/// The connection side of the queue to the writer.
#[derive(Clone, Debug)]
pub struct QueueTx {
    tx: mpsc::UnboundedSender<Batch>,
    permits: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    spares: Arc<Spares>,
    policy: WhenFull,
}

/// The writer side of the queue.
#[derive(Debug)]
pub struct QueueRx {
    rx: mpsc::UnboundedReceiver<Batch>,
    permits: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    spares: Arc<Spares>,
    capacity: usize,
}

/// A queue holding at most `capacity` messages (plus events).
pub fn queue(capacity: usize, policy: WhenFull) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    let bytes = Arc::new(Semaphore::new(QUEUE_BYTES));
    let spares = Arc::new(Spares::default());
    (
        QueueTx {
            tx,
            permits: permits.clone(),
            bytes: bytes.clone(),
            spares: spares.clone(),
            policy,
        },
        QueueRx {
            rx,
            permits,
            bytes,
            spares,
            capacity,
        },
    )
}

impl QueueTx {
    /// An empty batch for the next hand-off of a connection whose last batch held `last_len`
    /// payload bytes and `last_items` items: a reused buffer for a busy connection, a small
    /// fresh one sized like the last for a quiet one.
    pub fn batch(&self, stream: usize, conn: u64, last_len: usize, last_items: usize) -> Batch {
        let mut batch = Batch::new(stream, conn);
        if let Some((data, items)) = (last_len >= SPARE_MIN)
            .then(|| self.spares.take())
            .flatten()
        {
            batch.data = data;
            batch.items = items;
        }
        // A quarter more than last time, so the frame that crosses the connection's batch
        // limit fits without doubling the buffer.
        batch.data.reserve(last_len + last_len / 4);
        batch.items.reserve(last_items + last_items / 4);
        batch
    }

    /// Queues a batch, waiting for room under `block`, dropping its messages under
    /// `drop_newest` when there is no room. A batch must hold at most `capacity` messages.
    ///
    /// `dropped_before` counts messages dropped earlier and not yet marked in the data; when
    /// this batch is accepted, a `dropped` event with that count is put at its front and the
    /// count reset, so the mark sits exactly where the gap is and a long overload costs one
    /// event, not one per lost batch.
    pub async fn send(&self, mut batch: Batch, dropped_before: &mut u64) -> Sent {
        let n = batch.messages;
        let mut outcome = Sent::All;
        if n > 0 {
            let permits = u32::try_from(n).unwrap_or(u32::MAX);
            match self.policy {
                WhenFull::Block => {
                    match self.permits.acquire_many(permits).await {
                        Ok(p) => p.forget(),
                        Err(_) => return Sent::Closed,
                    }
                    let bytes = batch.data.len().min(QUEUE_BYTES);
                    // QUEUE_BYTES fits in u32.
                    match self.bytes.acquire_many(bytes as u32).await {
                        Ok(p) => p.forget(),
                        Err(_) => return Sent::Closed,
                    }
                    batch.byte_permits = bytes;
                }
                WhenFull::DropNewest => match self.permits.try_acquire_many(permits) {
                    Ok(p) => p.forget(),
                    Err(tokio::sync::TryAcquireError::Closed) => return Sent::Closed,
                    Err(tokio::sync::TryAcquireError::NoPermits) => {
                        let dropped = batch.strip_messages();
                        *dropped_before += dropped as u64;
                        outcome = Sent::Dropped(dropped);
                        if batch.is_empty() {
                            return outcome;
                        }
                    }
                },
            }
        }
        if *dropped_before > 0 && outcome == Sent::All {
            let ts = batch.items.first().map_or(0, |i| i.ts);
            let count = std::mem::take(dropped_before);
            batch.prepend_event(ts, "dropped", |f| {
                f.num("count", count).str("policy", "drop_newest");
            });
        }
        match self.tx.send(batch) {
            Ok(()) => outcome,
            Err(_) => Sent::Closed,
        }
    }
}

impl QueueRx {
    /// The next batch; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.rx.recv().await
    }

    /// A batch if one is ready now.
    pub fn try_recv(&mut self) -> Option<Batch> {
        self.rx.try_recv().ok()
    }

    /// Gives back the room a written batch took.
    pub fn release(&self, messages: usize) {
        if messages > 0 {
            self.permits.add_permits(messages);
        }
    }

    /// Gives back the room (messages and bytes) a written batch took, and keeps its buffers
    /// for reuse.
    pub fn release_batch(&self, batch: Batch) {
        self.release(batch.messages);
        if batch.byte_permits > 0 {
            self.bytes.add_permits(batch.byte_permits);
        }
        self.spares.put(batch.data, batch.items);
    }

    /// Messages waiting in the queue now.
    pub fn depth(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }
}

/// How long after the recording path last fell behind the compressor keeps out of its way.
pub(crate) const YIELD_AFTER_BACKLOG: Duration = Duration::from_millis(50);
/// The recording path's signal to the compressor: connections mark when they found more frames
/// ready than one batch takes (the network is ahead of them), and the compressor pauses between
/// chunks while that happened within `YIELD_AFTER_BACKLOG`. A burst at the machine's limit
/// then leaves the CPU, caches and memory bandwidth to recording; the backlog catches up after.
#[derive(Debug, Default)]
pub struct Pressure {
    /// Nanoseconds since [`Pressure::epoch`] at the last mark, plus one (0: never).
    last_backlog: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
    /// Shutdown has begun: what is queued is finished at normal priority, without yielding.
    draining: AtomicBool,
    /// The compressor has left its idle priority.
    raised: AtomicBool,
}

impl Pressure {
    fn epoch(&self) -> Instant {
        *self.epoch.get_or_init(Instant::now)
    }

    /// Called by a connection whose batch was cut short by its limits: more frames were ready.
    #[inline]
    pub fn mark_backlog(&self) {
        let ns = self.epoch().elapsed().as_nanos() as u64 + 1;
        self.last_backlog.store(ns, Relaxed);
    }

    /// Whether a connection fell behind within `YIELD_AFTER_BACKLOG`.
    pub fn recent(&self) -> bool {
        let last = self.last_backlog.load(Relaxed);
        last != 0
            && (self.epoch().elapsed().as_nanos() as u64 + 1).saturating_sub(last)
                < YIELD_AFTER_BACKLOG.as_nanos() as u64
    }

    /// Shutdown has begun: recording is over, so the compressor (at `SCHED_IDLE`, which on a
    /// busy machine gets no CPU at all) takes normal priority to finish within the deadline.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Whether shutdown has begun.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// True on the first call only: the compressor leaves its idle priority once.
    pub(crate) fn first_raise(&self) -> bool {
        !self.raised.swap(true, Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(n: usize) -> Batch {
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

    #[tokio::test]
    async fn drop_newest_keeps_events_and_counts() {
        let (tx, mut rx) = queue(3, WhenFull::DropNewest);
        let mut dropped = 0;
        assert_eq!(tx.send(batch_of(2), &mut dropped).await, Sent::All);
        assert_eq!(tx.send(batch_of(2), &mut dropped).await, Sent::Dropped(2));
        assert_eq!(dropped, 2);
        let first = rx.recv().await.unwrap();
        assert_eq!(first.messages, 2);
        let second = rx.recv().await.unwrap();
        assert_eq!(second.messages, 0);
        assert_eq!(second.items.len(), 1, "the event survives the drop");
        assert_eq!(rx.depth(), 2);
        rx.release(first.messages);
        assert_eq!(rx.depth(), 0);
        assert_eq!(tx.send(batch_of(3), &mut dropped).await, Sent::All);
        assert_eq!(dropped, 0);
        let third = rx.recv().await.unwrap();
        let (item, bytes) = third.iter().next().unwrap();
        assert_eq!(item.kind, Kind::Event);
        assert_eq!(
            bytes,
            br#""event":"dropped","count":2,"policy":"drop_newest""#
        );
        let texts: Vec<&[u8]> = third.iter().skip(2).map(|(_, b)| b).collect();
        assert_eq!(texts, [&b"{\"i\":0}"[..], b"{\"i\":1}", b"{\"i\":2}"]);
    }

    #[tokio::test]
    async fn block_waits_for_room() {
        let (tx, mut rx) = queue(2, WhenFull::Block);
        assert_eq!(tx.send(batch_of(2), &mut 0).await, Sent::All);
        let tx2 = tx.clone();
        let pending = tokio::spawn(async move { tx2.send(batch_of(1), &mut 0).await });
        let b = rx.recv().await.unwrap();
        tokio::task::yield_now().await;
        assert!(
            !pending.is_finished(),
            "sender must wait while the queue is full"
        );
        rx.release(b.messages);
        assert_eq!(pending.await.unwrap(), Sent::All);
        assert_eq!(rx.recv().await.unwrap().messages, 1);
    }

    #[tokio::test]
    async fn block_bounds_bytes_too() {
        let (tx, mut rx) = queue(1_000_000, WhenFull::Block);
        let big = |n: usize| {
            let mut b = Batch::new(0, 1);
            b.push_message(1, Kind::Binary, &vec![0u8; n]);
            b
        };
        assert_eq!(tx.send(big(QUEUE_BYTES / 2), &mut 0).await, Sent::All);
        let tx2 = tx.clone();
        // Over the byte bound: waits, although message permits are plenty.
        // (Also larger than SPARE_MAX, so its buffer is not kept for reuse.)
        let over = QUEUE_BYTES.max(SPARE_MAX) + 1;
        let pending = tokio::spawn(async move { tx2.send(big(over), &mut 0).await });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished(), "sender must wait for byte room");
        let first = rx.recv().await.unwrap();
        assert_eq!(first.byte_permits, QUEUE_BYTES / 2);
        let kept = first.data.as_ptr();
        rx.release_batch(first);
        // A batch larger than the whole bound still passes, alone.
        assert_eq!(pending.await.unwrap(), Sent::All);
        let second = rx.recv().await.unwrap();
        assert_eq!(second.byte_permits, QUEUE_BYTES);
        rx.release_batch(second);
        assert_eq!(tx.send(big(10), &mut 0).await, Sent::All);
        // A written batch's buffer comes back for a busy connection, cleared (the second,
        // larger than SPARE_MAX, was freed).
        let reused = tx.batch(0, 2, QUEUE_BYTES / 4, 1);
        assert!(reused.is_empty() && reused.data.as_ptr() == kept);
        assert_eq!((reused.stream, reused.conn, reused.byte_permits), (0, 2, 0));
        // A quiet one gets a small fresh buffer.
        assert!(tx.batch(0, 2, 100, 1).data.capacity() < SPARE_MIN);
    }

    #[tokio::test]
    async fn recv_ends_when_senders_drop() {
        let (tx, mut rx) = queue(2, WhenFull::Block);
        tx.send(batch_of(1), &mut 0).await;
        drop(tx);
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }
}
