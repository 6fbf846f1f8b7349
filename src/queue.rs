//! The bounded queue between the connections and the writer: the one place where the network
//! side hands over to the file side.
//!
//! The queue is bounded in messages by a semaphore: a batch of `n` messages takes `n` permits,
//! which the writer gives back after writing it. Events and snapshots take no permits: they are
//! few, and never dropped. Under `when_full = "block"` the queue is also bounded in payload bytes
//! ([`QUEUE_BYTES`]), so large frames cannot make 16,384 queued messages hold hundreds of MiB;
//! waiting costs no data there; snapshots' bytes count in it too. Under `drop_newest` only the message bound applies, so the byte
//! bound never makes it drop more. Written batches' buffers come back for reuse.

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
        // Snapshots take no message permits, but their bodies are large: under `block` they
        // count in the byte bound as messages do.
        if n > 0 || (batch.snapshots > 0 && self.policy == WhenFull::Block) {
            let permits = u32::try_from(n).unwrap_or(u32::MAX);
            match self.policy {
                WhenFull::Block => {
                    if n > 0 {
                        match self.permits.acquire_many(permits).await {
                            Ok(p) => p.forget(),
                            Err(_) => return Sent::Closed,
                        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Kind;
    use crate::batch::tests::batch_of;

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
        let (tx, mut rx) = queue(1, WhenFull::DropNewest);
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
        let (tx, mut rx) = queue(1_000, WhenFull::Block);
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

    #[tokio::test]
    async fn recv_ends_when_senders_drop() {
        let (tx, mut rx) = queue(2, WhenFull::Block);
        tx.send(batch_of(1), &mut 0).await;
        drop(tx);
        assert!(rx.recv().await.is_some());
        assert!(rx.recv().await.is_none());
    }
}
