//! The bounded queue between the connections and the writer: the one place where the network
//! side hands over to the file side.
//!
//! The queue is bounded in messages by a semaphore: a batch of `n` messages takes `n` permits,
//! which the writer gives back after writing it. Events and snapshots take no permits: they are
//! few, and never dropped. Under `when_full = "block"` the queue is also bounded in payload bytes
//! ([`QUEUE_BYTES`]), so large frames cannot make 16,384 queued messages hold hundreds of MiB;
//! waiting costs no data there; snapshots' bytes count in it too. Under `drop_newest` only the message bound applies, so the byte
//! bound never makes it drop more. Written batches' buffers come back for reuse.
//!
//! With two streams or more, each stream also has a small room of its own (`Reserve`),
//! taken only when the shared room is full. A stream that sends faster than the disk takes
//! the shared room and then waits (or drops) alone: the others go on reading into their own
//! room meanwhile, so their receive times stay true and, under `drop_newest`, they lose
//! nothing for the busy stream's sake.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc};

use crate::batch::{Batch, Item};
use crate::config::WhenFull;

/// Most payload bytes queued at once under `block` (a batch larger than this still passes,
/// alone). 256 KiB is ~0.5 ms of a 500 MB/s flood: four 64 KiB batches of slack for the
/// writer, which on the default single runtime thread runs whenever the connection yields.
/// A larger bound only raised peak RSS, for no speed (figures in bench/README.md).
pub const QUEUE_BYTES: usize = 256 * 1024;
/// Written batches' buffers kept for reuse (see [`QueueTx::batch`]).
const SPARE_BATCHES: usize = 4;
/// Buffers smaller than this are not worth keeping: a quiet connection allocates its few
/// bytes itself.
const SPARE_MIN: usize = 16 * 1024;
/// Buffers larger than this (grown by big frames) are freed, not kept.
const SPARE_MAX: usize = 256 * 1024;

/// The rooms of all streams together hold at most this many bytes: each stream's is this
/// divided among the streams, between [`RESERVE_MIN`] and [`RESERVE_MAX`].
const RESERVE_TOTAL: usize = 4 << 20;
/// A stream's own room, in bytes, with up to 16 streams: at 3,000 messages of 200 bytes a
/// second, about 400 ms of messages while the writer waits for the disk (whose writes into
/// the page cache stopped for 50-350 ms at a time under a 350 MB/s flood; a 64 KiB room still
/// let such waits hold the stream's reading for up to 100 ms: README, Performance).
const RESERVE_MAX: usize = 256 << 10;
/// A stream's own room, in bytes, with more than a thousand streams: a quiet stream's
/// messages of a second or more.
const RESERVE_MIN: usize = 4 << 10;
/// A stream's room holds one message per this many of its bytes (4,096 messages in 256 KiB).
const RESERVE_BYTES_PER_MESSAGE: usize = 64;

/// What one stream holds of its own room now.
#[derive(Debug, Default)]
struct Room {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

/// Each stream's room of its own in the queue, for when the shared room is full (see the
/// module documentation). A recorder of one stream has none: it has no other stream to be
/// fair to, and `queue_capacity` stays its whole bound.
#[derive(Debug)]
struct Reserve {
    rooms: Box<[Room]>,
    /// The most messages, and bytes, one stream's room holds.
    messages: usize,
    bytes: usize,
    /// Messages in all the rooms, for [`QueueRx::depth`].
    held: AtomicUsize,
}

impl Reserve {
    fn new(streams: usize, capacity: usize) -> Self {
        let bytes = (RESERVE_TOTAL / streams.max(1)).clamp(RESERVE_MIN, RESERVE_MAX);
        let rooms = if streams > 1 {
            (0..streams).map(|_| Room::default()).collect()
        } else {
            Box::default()
        };
        Reserve {
            rooms,
            messages: (bytes / RESERVE_BYTES_PER_MESSAGE).min(capacity),
            bytes,
            held: AtomicUsize::new(0),
        }
    }

    /// Puts `batch` in its stream's own room, if that has room for it, and notes so in the
    /// batch ([`Batch::reserved`], its bytes in `byte_permits`) for [`Reserve::give_back`].
    fn admit(&self, batch: &mut Batch) -> bool {
        let (messages, bytes) = (batch.messages, batch.data.len());
        let Some(room) = self.rooms.get(batch.stream) else {
            return false;
        };
        if messages > self.messages || bytes > self.bytes {
            return false;
        }
        // Two connections of a stream (shards, or the old and the new one of a
        // make-before-break) may race here: each adds, and takes back what did not fit.
        let had_messages = room.messages.fetch_add(messages, AcqRel);
        let had_bytes = room.bytes.fetch_add(bytes, AcqRel);
        if had_messages + messages > self.messages || had_bytes + bytes > self.bytes {
            room.messages.fetch_sub(messages, AcqRel);
            room.bytes.fetch_sub(bytes, AcqRel);
            return false;
        }
        self.held.fetch_add(messages, Relaxed);
        batch.reserved = true;
        batch.byte_permits = bytes;
        true
    }

    /// Gives back the room a batch [`Reserve::admit`]ted took.
    fn give_back(&self, batch: &Batch) {
        if let Some(room) = self.rooms.get(batch.stream) {
            room.messages.fetch_sub(batch.messages, AcqRel);
            room.bytes.fetch_sub(batch.byte_permits, AcqRel);
            self.held.fetch_sub(batch.messages, Relaxed);
        }
    }
}

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
    reserve: Arc<Reserve>,
    spares: Arc<Spares>,
    policy: WhenFull,
}

/// The writer side of the queue.
#[derive(Debug)]
pub struct QueueRx {
    rx: mpsc::UnboundedReceiver<Batch>,
    permits: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    reserve: Arc<Reserve>,
    spares: Arc<Spares>,
    capacity: usize,
}

/// A queue for `streams` streams holding at most `capacity` messages (plus events) in its
/// shared room, and with two streams or more each stream's own room besides.
pub fn queue(capacity: usize, policy: WhenFull, streams: usize) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    let bytes = Arc::new(Semaphore::new(QUEUE_BYTES));
    let reserve = Arc::new(Reserve::new(streams, capacity));
    let spares = Arc::new(Spares::default());
    (
        QueueTx {
            tx,
            permits: permits.clone(),
            bytes: bytes.clone(),
            reserve: reserve.clone(),
            spares: spares.clone(),
            policy,
        },
        QueueRx {
            rx,
            permits,
            bytes,
            reserve,
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
        // Snapshots take no message permits, but their bodies are large: under `block` they
        // count in the byte bound as messages do.
        if n > 0 || (batch.snapshots > 0 && self.policy == WhenFull::Block) {
            let permits = u32::try_from(n).unwrap_or(u32::MAX);
            match self.policy {
                WhenFull::Block => {
                    let bytes = batch.data.len().min(QUEUE_BYTES);
                    let Some(shared) = self.try_shared(permits, bytes) else {
                        return Sent::Closed;
                    };
                    if shared {
                        batch.byte_permits = bytes;
                    } else if !self.reserve.admit(&mut batch) {
                        if n > 0 {
                            match self.permits.acquire_many(permits).await {
                                Ok(p) => p.forget(),
                                Err(_) => return Sent::Closed,
                            }
                        }
                        // QUEUE_BYTES fits in u32.
                        match self.bytes.acquire_many(bytes as u32).await {
                            Ok(p) => p.forget(),
                            Err(_) => return Sent::Closed,
                        }
                        batch.byte_permits = bytes;
                    }
                }
                WhenFull::DropNewest => match self.permits.try_acquire_many(permits) {
                    Ok(p) => p.forget(),
                    Err(tokio::sync::TryAcquireError::Closed) => return Sent::Closed,
                    Err(tokio::sync::TryAcquireError::NoPermits)
                        if self.reserve.admit(&mut batch) => {}
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

    /// Takes `permits` messages and `bytes` bytes of the shared room if both are free now
    /// (none if not); `None` when the writer is gone.
    fn try_shared(&self, permits: u32, bytes: usize) -> Option<bool> {
        use tokio::sync::TryAcquireError::{Closed, NoPermits};
        let messages = match self.permits.try_acquire_many(permits) {
            Ok(p) => p,
            Err(NoPermits) => return Some(false),
            Err(Closed) => return None,
        };
        // QUEUE_BYTES fits in u32.
        match self.bytes.try_acquire_many(bytes as u32) {
            Ok(b) => {
                messages.forget();
                b.forget();
                Some(true)
            }
            // Dropping the message permits gives them back.
            Err(NoPermits) => Some(false),
            Err(Closed) => None,
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
        if batch.reserved {
            self.reserve.give_back(&batch);
        } else {
            self.release(batch.messages);
            if batch.byte_permits > 0 {
                self.bytes.add_permits(batch.byte_permits);
            }
        }
        self.spares.put(batch.data, batch.items);
    }

    /// Messages waiting in the queue now (the streams' own rooms included).
    pub fn depth(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
            + self.reserve.held.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Kind;
    use crate::batch::tests::batch_of;

    #[tokio::test]
    async fn drop_newest_keeps_events_and_counts() {
        let (tx, mut rx) = queue(3, WhenFull::DropNewest, 1);
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
        let (tx, mut rx) = queue(2, WhenFull::Block, 1);
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
        let (tx, mut rx) = queue(1_000_000, WhenFull::Block, 1);
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

    /// A batch of one snapshot of `n` body bytes.
    fn snapshot_batch(n: usize) -> Batch {
        let mut b = Batch::new(0, 1);
        b.push_snapshot(
            1,
            |f| {
                f.str("symbol", "X");
            },
            &vec![b'1'; n],
        );
        b
    }

    #[tokio::test]
    async fn drop_newest_never_drops_a_snapshot() {
        let (tx, mut rx) = queue(1, WhenFull::DropNewest, 1);
        let mut dropped = 0;
        assert_eq!(tx.send(batch_of(1), &mut dropped).await, Sent::All);
        // The queue is full: the messages go, the snapshot (and the event) stay.
        let mut b = batch_of(2);
        b.push_snapshot(
            3,
            |f| {
                f.str("symbol", "X");
            },
            b"{}",
        );
        assert_eq!(tx.send(b, &mut dropped).await, Sent::Dropped(2));
        // A batch of only a snapshot takes no message permit: it passes a full queue.
        assert_eq!(tx.send(snapshot_batch(10), &mut dropped).await, Sent::All);
        rx.recv().await.unwrap();
        let kinds: Vec<Kind> = rx
            .recv()
            .await
            .unwrap()
            .items
            .iter()
            .map(|i| i.kind)
            .collect();
        assert_eq!(kinds, [Kind::Event, Kind::Snapshot { fields: 13 }]);
        assert_eq!(rx.recv().await.unwrap().snapshots, 1);
    }

    #[tokio::test]
    async fn block_bounds_snapshot_bytes() {
        let (tx, mut rx) = queue(1_000, WhenFull::Block, 1);
        assert_eq!(
            tx.send(snapshot_batch(QUEUE_BYTES / 2), &mut 0).await,
            Sent::All
        );
        let tx2 = tx.clone();
        let pending =
            tokio::spawn(async move { tx2.send(snapshot_batch(QUEUE_BYTES), &mut 0).await });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished(), "a snapshot waits for byte room");
        let first = rx.recv().await.unwrap();
        assert!(first.byte_permits > QUEUE_BYTES / 2);
        rx.release_batch(first);
        assert_eq!(pending.await.unwrap(), Sent::All);
        assert_eq!(rx.recv().await.unwrap().byte_permits, QUEUE_BYTES);
    }

    /// [`batch_of`] for stream `stream`.
    fn batch_of_stream(stream: usize, n: usize) -> Batch {
        let mut b = batch_of(n);
        b.stream = stream;
        b
    }

    #[tokio::test]
    async fn a_stream_over_the_shared_room_waits_while_another_uses_its_own() {
        // Two streams: each has a room of its own of 4 messages (its size, capped by the
        // capacity).
        let (tx, mut rx) = queue(4, WhenFull::Block, 2);
        assert_eq!(tx.send(batch_of_stream(0, 4), &mut 0).await, Sent::All);
        // The shared room is full: stream 0 goes on in its own room, then waits.
        assert_eq!(tx.send(batch_of_stream(0, 4), &mut 0).await, Sent::All);
        let tx0 = tx.clone();
        let busy = tokio::spawn(async move { tx0.send(batch_of_stream(0, 1), &mut 0).await });
        tokio::task::yield_now().await;
        assert!(
            !busy.is_finished(),
            "stream 0 must wait when both its rooms are full"
        );
        // Stream 1 is not held up by stream 0: its batches go into its own room at once.
        assert_eq!(tx.send(batch_of_stream(1, 3), &mut 0).await, Sent::All);
        assert_eq!(rx.depth(), 11);
        // Until that room is full too.
        let tx1 = tx.clone();
        let quiet = tokio::spawn(async move { tx1.send(batch_of_stream(1, 2), &mut 0).await });
        tokio::task::yield_now().await;
        assert!(!quiet.is_finished(), "stream 1's own room holds 4 messages");

        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        let third = rx.recv().await.unwrap();
        assert_eq!(
            [first.reserved, second.reserved, third.reserved],
            [false, true, true]
        );
        // Stream 1's room back: its waiting batch takes the shared room once stream 0's
        // first batch gives it back, in the order the two waited.
        rx.release_batch(third);
        rx.release_batch(second);
        tokio::task::yield_now().await;
        assert!(!busy.is_finished() && !quiet.is_finished());
        rx.release_batch(first);
        assert_eq!(busy.await.unwrap(), Sent::All);
        assert_eq!(quiet.await.unwrap(), Sent::All);
        let (a, b) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert_eq!(
            (a.stream, a.reserved, b.stream, b.reserved),
            (0, false, 1, false)
        );
        rx.release_batch(a);
        rx.release_batch(b);
        assert_eq!(rx.depth(), 0);
    }

    #[tokio::test]
    async fn under_drop_newest_a_stream_over_the_shared_room_drops_alone() {
        let (tx, mut rx) = queue(2, WhenFull::DropNewest, 2);
        let mut dropped = [0, 0];
        assert_eq!(
            tx.send(batch_of_stream(0, 2), &mut dropped[0]).await,
            Sent::All
        );
        assert_eq!(
            tx.send(batch_of_stream(0, 2), &mut dropped[0]).await,
            Sent::All
        );
        assert_eq!(
            tx.send(batch_of_stream(0, 2), &mut dropped[0]).await,
            Sent::Dropped(2)
        );
        assert_eq!(
            tx.send(batch_of_stream(1, 2), &mut dropped[1]).await,
            Sent::All
        );
        assert_eq!(dropped, [2, 0]);
        let kept: Vec<(usize, usize)> = std::iter::from_fn(|| rx.try_recv())
            .map(|b| (b.stream, b.messages))
            .collect();
        assert_eq!(kept, [(0, 2), (0, 2), (0, 0), (1, 2)]);
    }

    #[tokio::test]
    async fn one_stream_has_no_room_of_its_own() {
        let (tx, _rx) = queue(2, WhenFull::DropNewest, 1);
        assert_eq!(tx.send(batch_of(2), &mut 0).await, Sent::All);
        assert_eq!(tx.send(batch_of(1), &mut 0).await, Sent::Dropped(1));
    }

    #[test]
    fn the_streams_rooms_share_a_bound() {
        let sizes = |streams| {
            let r = Reserve::new(streams, 16_384);
            (r.rooms.len(), r.messages, r.bytes)
        };
        assert_eq!(sizes(1), (0, 4096, RESERVE_MAX));
        assert_eq!(sizes(2), (2, 4096, RESERVE_MAX));
        assert_eq!(sizes(16), (16, 4096, RESERVE_MAX));
        assert_eq!(sizes(64), (64, 1024, 64 << 10));
        assert_eq!(sizes(256), (256, 256, 16 << 10));
        assert_eq!(sizes(5000), (5000, 64, RESERVE_MIN));
    }

    #[tokio::test]
    async fn recv_ends_when_senders_drop() {
        let (tx, mut rx) = queue(2, WhenFull::Block, 1);
        tx.send(batch_of(1), &mut 0).await;
        drop(tx);
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }
}
