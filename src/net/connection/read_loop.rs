//! The read loop of one connection, the hot path: after each wake-up it takes every frame that
//! is ready without waiting, puts them into the batch with their receive time, and queues the
//! batch; between wake-ups it serves the keepalive and venue deadlines.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;

use crate::batch::{Batch, Kind};
use crate::net::transport::{self, Incoming, TransportError};

use super::dormant::Dormant;
use super::keepalive::Keepalive;
use super::tracking::{VenueState, is_data};
use super::{BATCH_BYTES, Connection, End, Notice};

/// Frames between two reads of the clock while draining ready frames.
const FRAMES_PER_TIMESTAMP: usize = 16;
/// Most frames taken per wake-up, control frames included, so a server streaming pongs or
/// other frames that add no message cannot keep the task from checking shutdown and timers.
const FRAMES_PER_WAKE: usize = 8192;

impl Connection {
    /// Reads until the connection ends; with it, when a venue maintenance that is still under
    /// way is over at the latest (no reconnect before then).
    pub(super) async fn read_loop(
        &self,
        ws: &mut transport::Socket,
        batch: &mut Batch,
        server_ping: Option<Duration>,
    ) -> (End, Option<Instant>) {
        let rt = &*self.rt;
        let mut venue = rt
            .venue
            .as_ref()
            .map(|v| VenueState::new(v, rt.snapshots.is_some()));
        let end = self.read_frames(ws, batch, &mut venue, server_ping).await;
        let maintenance = venue.and_then(|v| v.finish(&rt.stats));
        (end, maintenance)
    }

    /// Whether data has come on this connection (see [`Self::run`]).
    fn has_data(&self, batch: &Batch, venue: &Option<VenueState>) -> bool {
        match venue {
            Some(v) => v.delivered,
            None => self.messages_in_conn(batch) > self.rt.subscribe.len() as u64,
        }
    }

    async fn read_frames(
        &self,
        ws: &mut transport::Socket,
        batch: &mut Batch,
        venue: &mut Option<VenueState>,
        server_ping: Option<Duration>,
    ) -> End {
        let rt = &*self.rt;
        let mut keepalive = Keepalive::new(rt, server_ping);
        let next_deadline = |k: &Keepalive, v: &Option<VenueState>| {
            let own = k.next_deadline();
            v.as_ref()
                .and_then(|v| v.tracker.deadline())
                .map_or(own, |d| d.min(own))
        };
        let timer = tokio::time::sleep_until(next_deadline(&keepalive, venue));
        tokio::pin!(timer);
        // Flush the connected/subscribed events right away so they are on disk in order.
        if let Some(end) = self.flush(batch).await {
            return end;
        }
        let mut ready_sent = false;
        let mut slice = crate::fair::Slice::new();
        // Made once: a new `cancelled()` future per wake-up would register with its token
        // and unregister again each time, under the token's lock. And polled only when a
        // token woke it, not at every frame (see `Dormant`).
        let stamp = ws.stamp();
        let mut stop = Dormant::new(async {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => End::Shutdown,
                () = self.retire.cancelled() => End::Replaced,
            }
        });
        loop {
            let first = tokio::select! {
                biased;
                end = &mut stop => {
                    return self.take_ready(ws, batch, &mut keepalive, venue).await.unwrap_or(end);
                }
                r = ws.next() => r,
                () = &mut timer => {
                    if let Err(end) = keepalive.on_timer(ws, rt).await {
                        return end;
                    }
                    if let Some(v) = venue.as_mut() {
                        v.tracker.on_deadline(Instant::now(), &mut v.outcomes);
                        self.venue_outcomes(v, rt.clock.now_ns(), batch);
                        if let Some(end) = self.flush(batch).await {
                            return end;
                        }
                    }
                    timer.as_mut().reset(next_deadline(&keepalive, venue));
                    continue;
                }
            };
            let mut ts = receive_ts(&stamp, &rt.clock);
            let mut end = self.push_frame(first, ts, batch, &mut keepalive, venue);
            let mut n = 1;
            loop {
                if end.is_some() {
                    break;
                }
                if self.batch_full(batch) || n >= FRAMES_PER_WAKE {
                    rt.pressure.mark_backlog();
                    break;
                }
                let Some(next) = ws.try_next() else { break };
                if stamp.is_some() {
                    // The stamp of the read that completed this frame (a load, no clock call).
                    ts = receive_ts(&stamp, &rt.clock);
                } else if n % FRAMES_PER_TIMESTAMP == 0 {
                    ts = rt.clock.now_ns();
                }
                n += 1;
                end = self.push_frame(next, ts, batch, &mut keepalive, venue);
            }
            if batch.messages > 0 {
                keepalive.on_data();
                if !ready_sent && self.has_data(batch, venue) {
                    ready_sent = true;
                    self.productive.store(true, Relaxed);
                    let _ = self.notify.send(Notice::Ready(self.conn));
                }
            }
            if let Some(gone) = self.flush(batch).await {
                return gone;
            }
            if let Some(end) = end {
                return end;
            }
            if let Some(v) = venue.as_mut()
                && let Some(end) = self.venue_actions(ws, v).await
            {
                return end;
            }
            // Under a flood this task is always ready: timers, signals and the status socket
            // get their turn.
            slice.tick().await;
        }
    }

    /// Records the frames that can be had without waiting (already buffered, or held by the
    /// kernel) before the connection ends on shutdown or retirement: they were received, so
    /// they are written. Stops after [`FRAMES_PER_WAKE`] frames, so a flood cannot hold the
    /// stop up, or at a frame that ends the connection, which is then how it ended (a close
    /// from the server, a message over the size limit: a loss that must show as such).
    async fn take_ready(
        &self,
        ws: &mut transport::Socket,
        batch: &mut Batch,
        keepalive: &mut Keepalive,
        venue: &mut Option<VenueState>,
    ) -> Option<End> {
        let rt = &*self.rt;
        // The socket reads only once tokio's driver has seen it readable: let the driver look
        // at what arrived since this task last read (a yield is woken after the driver's poll).
        tokio::task::yield_now().await;
        let stamp = ws.stamp();
        for _ in 0..FRAMES_PER_WAKE {
            let Some(frame) = ws.try_next() else { break };
            let ts = receive_ts(&stamp, &rt.clock);
            if let Some(end) = self.push_frame(frame, ts, batch, keepalive, venue) {
                return self.flush(batch).await.or(Some(end));
            }
            if self.batch_full(batch)
                && let Some(gone) = self.flush(batch).await
            {
                return Some(gone);
            }
        }
        self.flush(batch).await
    }

    /// Whether the batch holds what one hand-off to the writer may (`batch_max` messages or
    /// [`BATCH_BYTES`]).
    #[inline]
    fn batch_full(&self, batch: &Batch) -> bool {
        batch.messages >= self.rt.batch_max || batch.data.len() >= BATCH_BYTES
    }

    /// Puts one frame into the batch; returns how the connection ends if it does.
    #[inline]
    fn push_frame(
        &self,
        frame: Result<Incoming<'_>, TransportError>,
        ts: u64,
        batch: &mut Batch,
        keepalive: &mut Keepalive,
        venue: &mut Option<VenueState>,
    ) -> Option<End> {
        match frame {
            Ok(Incoming::Text(payload) | Incoming::Line(payload)) => {
                keepalive.on_text(payload, self.rt.app_pong_contains.as_deref());
                let kind = match frame {
                    Ok(Incoming::Line(_)) => Kind::Line,
                    _ => Kind::Text,
                };
                batch.push_message(ts, kind, payload);
                if let Some(v) = venue.as_mut() {
                    if !v.delivered {
                        v.delivered = is_data(v.family, payload);
                    }
                    v.tracker.on_message(payload, &mut v.outcomes);
                    if !v.outcomes.is_empty() {
                        self.venue_outcomes(v, ts, batch);
                    }
                }
                None
            }
            Ok(Incoming::Binary(payload)) => {
                batch.push_message(ts, Kind::Binary, payload);
                if let Some(v) = venue.as_mut() {
                    // Recorded as received above; the family reads acks, errors, pings and
                    // topics out of it (HTX gzip, MEXC protobuf, Upbit JSON) as it does text.
                    let data = v.tracker.on_binary(payload, !v.delivered, &mut v.outcomes);
                    v.delivered |= data;
                    if !v.outcomes.is_empty() {
                        self.venue_outcomes(v, ts, batch);
                    }
                }
                None
            }
            Ok(Incoming::Ping) => None,
            Ok(Incoming::Pong) => {
                keepalive.on_pong();
                None
            }
            Ok(Incoming::Close { code, reason }) => Some(End::Closed { code, reason }),
            Err(TransportError::TooLarge(max)) => {
                Some(End::TooLarge(TransportError::TooLarge(max).to_string()))
            }
            Err(e) => Some(End::Error(e.to_string())),
        }
    }
}

/// A frame's receive time: the kernel's stamp of the data that completed it when kernel stamps
/// are on (`stamp`, [`transport::Socket::stamp`]) and one has come, else the clock now.
#[inline]
fn receive_ts(stamp: &Option<transport::Stamp>, clock: &crate::clock::Clock) -> u64 {
    match stamp.as_ref().map(|s| s.load(Relaxed)) {
        Some(ns) if ns > 0 => ns,
        _ => clock.now_ns(),
    }
}
