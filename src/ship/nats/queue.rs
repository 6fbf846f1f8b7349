//! The writer's side of the fan-out: the bounded queue of line copies, what the writer and the
//! sink share (counters, whether publishing works, the gaps to mark per stream), and the
//! `nats_gap` event put in front of a stream's next batch once publishing works again.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::batch::Batch;
use crate::clock::Clock;
use crate::observe::stats::NatsStats;

/// Lines of one stream not published, not yet marked.
#[derive(Debug, Default)]
pub(super) struct Gap {
    pub(super) lost: u64,
    pub(super) from_ts: u64,
    pub(super) to_ts: u64,
}

impl Gap {
    /// One line received at `ts`.
    pub(super) fn line(ts: u64) -> Self {
        Gap {
            lost: 1,
            from_ts: ts,
            to_ts: ts,
        }
    }

    #[inline]
    pub(super) fn add(&mut self, n: u64, from: u64, to: u64) {
        if self.lost == 0 {
            self.from_ts = from;
        }
        self.lost += n;
        self.to_ts = to;
    }
}

/// What the writer and the sink share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) stats: Arc<crate::observe::stats::Stats>,
    /// Publishing works (set by the sink): gaps may be marked.
    pub(super) up: AtomicBool,
    /// Per stream: lines not published, to be marked.
    pub(super) gaps: Vec<Mutex<Gap>>,
    /// Per stream: `gaps[i]` is non-empty.
    pub(super) gap_pending: Vec<AtomicBool>,
    pub(super) queue_messages: u64,
    pub(super) queue_bytes: u64,
}

impl Shared {
    pub(super) fn nats(&self) -> &NatsStats {
        &self.stats.nats
    }

    /// Counts the lines of `lost` as dropped and adds them to stream `stream`'s gap.
    pub(super) fn lose(&self, stream: usize, lost: &Gap) {
        if lost.lost == 0 {
            return;
        }
        self.nats().dropped.fetch_add(lost.lost, Relaxed);
        if let Some(g) = self.gaps.get(stream) {
            g.lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(lost.lost, lost.from_ts, lost.to_ts);
            self.gap_pending[stream].store(true, Relaxed);
        }
    }

    pub(super) fn release(&self, lines: u64, bytes: u64) {
        self.nats().queued.fetch_sub(lines, Relaxed);
        self.nats().queued_bytes.fetch_sub(bytes, Relaxed);
    }
}

/// Where one line of [`Copies::data`] ends, and when it was received.
#[derive(Debug, Clone, Copy)]
pub(super) struct LineEnd {
    /// End offset in `data`.
    pub(super) end: usize,
    /// Receive time.
    pub(super) ts: u64,
}

/// The encoded lines of one write batch, for the sink.
#[derive(Debug)]
pub struct Copies {
    pub(super) stream: usize,
    pub(super) data: Vec<u8>,
    pub(super) lines: Vec<LineEnd>,
}

/// The copies of one batch being written: either a queue slot and the lines, or a count of
/// the lines that found the queue full.
#[derive(Debug)]
pub struct LineCopy {
    permit: Option<mpsc::OwnedPermit<Copies>>,
    copies: Copies,
    dropped: Gap,
}

impl LineCopy {
    /// Adds a line (without its newline).
    #[inline]
    pub fn push(&mut self, line: &[u8], ts: u64) {
        if self.permit.is_some() {
            self.copies.data.extend_from_slice(line);
            self.copies.lines.push(LineEnd {
                end: self.copies.data.len(),
                ts,
            });
        } else {
            self.dropped.add(1, ts, ts);
        }
    }
}

/// The writer's end of the fan-out.
#[derive(Debug)]
pub struct NatsTx {
    pub(super) tx: mpsc::Sender<Copies>,
    pub(super) shared: Arc<Shared>,
    /// Per stream: whether it publishes.
    pub(super) enabled: Vec<bool>,
}

impl NatsTx {
    /// Starts the copies of a batch of stream `idx`; `None` when the stream does not publish.
    /// With a queue slot, a pending gap of the stream is marked first: a `nats_gap` event is put
    /// at the front of the batch (so it is written to the file and published).
    pub fn begin(&self, idx: usize, batch: &mut Batch, clock: Clock) -> Option<LineCopy> {
        if !self.enabled.get(idx).copied().unwrap_or(false) {
            return None;
        }
        let nats = self.shared.nats();
        let room = nats.queued.load(Relaxed) < self.shared.queue_messages
            && nats.queued_bytes.load(Relaxed) < self.shared.queue_bytes;
        let permit = if room {
            self.tx.clone().try_reserve_owned().ok()
        } else {
            None
        };
        if permit.is_some()
            && self.shared.up.load(Relaxed)
            && self.shared.gap_pending[idx].swap(false, Relaxed)
        {
            let gap = std::mem::take(
                &mut *self.shared.gaps[idx]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            if gap.lost > 0 {
                tracing::warn!(stream = %self.shared.stats.streams[idx].name, lost = gap.lost, "NATS fan-out resumed; the lines it missed are marked with a nats_gap event (the file has them all).");
                let ts = batch.items.first().map_or_else(|| clock.now_ns(), |i| i.ts);
                batch.prepend_event(ts, "nats_gap", |f| {
                    f.num("lost", gap.lost)
                        .num("from_ts", gap.from_ts)
                        .num("to_ts", gap.to_ts);
                });
            }
        }
        Some(LineCopy {
            permit,
            copies: Copies {
                stream: idx,
                // Envelope lines are the payload plus ~60 bytes.
                data: Vec::with_capacity(batch.data.len() + 64 * batch.items.len()),
                lines: Vec::with_capacity(batch.items.len()),
            },
            dropped: Gap::default(),
        })
    }

    /// Hands the copies over (or counts them as dropped).
    pub fn finish(&self, copy: LineCopy) {
        let LineCopy {
            permit,
            copies,
            dropped,
        } = copy;
        self.shared.lose(copies.stream, &dropped);
        if let Some(permit) = permit
            && !copies.lines.is_empty()
        {
            let nats = self.shared.nats();
            nats.queued.fetch_add(copies.lines.len() as u64, Relaxed);
            nats.queued_bytes
                .fetch_add(copies.data.len() as u64, Relaxed);
            permit.send(copies);
        }
    }

    /// A gap of stream `idx` is waiting to be marked and publishing works: the writer should
    /// write an (empty) batch for it.
    pub fn gap_due(&self, idx: usize) -> bool {
        self.enabled.get(idx).copied().unwrap_or(false)
            && self.shared.up.load(Relaxed)
            && self.shared.gap_pending[idx].load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ship::nats::channel;
    use crate::ship::nats::tests::{parse, stats_for};

    #[test]
    fn full_queue_counts_lines_and_marks_the_gap_once_up() {
        let config =
            parse("url = 'nats://127.0.0.1:4222'\nmax_in_flight = 1\nqueue_messages = 1").unwrap();
        let stats = stats_for(&config);
        let (tx, mut sink) = channel(config.nats.as_ref().unwrap(), &config, stats.clone(), 1);
        let clock = Clock::System;
        // The stream that opted out gets no copies.
        assert!(tx.begin(1, &mut Batch::new(1, 1), clock).is_none());
        // The first batch fills the queue (one line), the next two are counted.
        let mut first = tx.begin(0, &mut Batch::new(0, 1), clock).unwrap();
        first.push(b"line-1", 10);
        tx.finish(first);
        for ts in [20, 30] {
            let mut c = tx.begin(0, &mut Batch::new(0, 1), clock).unwrap();
            c.push(b"line", ts);
            tx.finish(c);
        }
        assert_eq!(stats.nats.dropped.load(Relaxed), 2);
        assert_eq!(stats.nats.queued.load(Relaxed), 1);
        // Not marked while publishing is down.
        assert!(!tx.gap_due(0));
        let taken = sink.rx.try_recv().unwrap();
        assert_eq!(taken.data, b"line-1");
        sink.shared.release(1, 6);
        sink.shared.up.store(true, Relaxed);
        assert!(tx.gap_due(0));
        let mut batch = Batch::new(0, 1);
        batch.push_message(40, crate::batch::Kind::Text, b"{}");
        let copy = tx.begin(0, &mut batch, clock).unwrap();
        let (item, bytes) = batch.iter().next().unwrap();
        assert_eq!(item.kind, crate::batch::Kind::Event);
        assert_eq!(
            bytes,
            br#""event":"nats_gap","lost":2,"from_ts":20,"to_ts":30"#
        );
        assert_eq!(item.ts, 40);
        assert!(!tx.gap_due(0));
        drop(copy);
    }
}
