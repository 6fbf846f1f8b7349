//! JetStream publish and acks: fills the window (one line until the server confirms that it
//! stores, one guarded line at a time for a subject that is not clean, read back first when
//! needed), handles each ack in order, and settles the pending lines of a subject after a
//! read-back.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;

use super::event::NatsEvent;
use super::guard::read_back;
use super::queue::Gap;
use super::sink::{Line, Sink};

/// Why a line was not published.
enum NotPublished {
    /// The connection is not usable: the line is kept for the next attempt.
    Down,
    /// The server refused the line for good.
    Refused,
}

impl Sink {
    /// Publishes `line`, with `Nats-Expected-Last-Subject-Sequence: guard` if given.
    async fn publish(
        &mut self,
        js: &async_nats::jetstream::Context,
        line: &mut Line,
        guard: Option<u64>,
    ) -> Result<(), NotPublished> {
        let mut publish = async_nats::jetstream::message::PublishMessage::build()
            .payload(line.payload.clone())
            .message_id(format!("{}-{}", self.id_prefix, line.id));
        if let Some(seq) = guard {
            publish = publish.expected_last_subject_sequence(seq);
        }
        line.guarded = guard.is_some();
        match js
            .send_publish(self.subjects[line.stream].clone(), publish)
            .await
        {
            Ok(ack) => {
                line.ack = Some(std::future::IntoFuture::into_future(ack));
                Ok(())
            }
            Err(e) if transient(e.kind()) => Err(NotPublished::Down),
            Err(_) => Err(NotPublished::Refused),
        }
    }

    /// Publishes pending lines while the window has room: one until an ack confirms that the
    /// server stores, then up to `max_in_flight`; a subject that is not clean gets one guarded
    /// line at a time (read back first when needed). Stops at the first line that must wait.
    pub(super) async fn fill(&mut self, js: &async_nats::jetstream::Context) {
        loop {
            let room = if self.confirmed {
                self.config.max_in_flight
            } else {
                1
            };
            if !self.up || self.window.len() >= room {
                break;
            }
            let Some(stream) = self.pending.front().map(|l| l.stream) else {
                break;
            };
            let t = &self.track[stream];
            let guard = match t.last {
                Some(_) if t.clean => None,
                // One line of the subject at a time: wait for the ack.
                _ if t.in_flight > 0 => break,
                Some(_) if t.read_back => {
                    if let Err(e) = self.read_back(js, stream).await {
                        if !self.warned_read_back {
                            self.warned_read_back = true;
                            tracing::warn!(subject = %self.subjects[stream], error = %e, "Cannot read back from JetStream what it holds of this subject (the credentials need $JS.API.STREAM.NAMES and $JS.API.STREAM.MSG.GET.<stream>); retrying.");
                        }
                        self.set_up(false);
                        break;
                    }
                    self.warned_read_back = false;
                    continue;
                }
                // `None`: the subject's first line of this run, alone.
                last => last,
            };
            let Some(mut line) = self.pending.pop_front() else {
                break;
            };
            match self.publish(js, &mut line, guard).await {
                Ok(()) => {
                    self.track[stream].in_flight += 1;
                    self.window.push_back(line);
                }
                Err(NotPublished::Down) => {
                    // Keep it first in line for the next attempt.
                    self.pending.push_front(line);
                    self.set_up(false);
                }
                Err(NotPublished::Refused) => self.refused(&line, "refused"),
            }
        }
        self.shared
            .nats()
            .in_flight
            .store(self.window.len() as u64, Relaxed);
    }

    /// Reads back what JetStream holds of stream `stream`'s subject after `last` and settles
    /// the pending lines of the subject accordingly; `last` becomes the subject's last
    /// sequence.
    async fn read_back(
        &mut self,
        js: &async_nats::jetstream::Context,
        stream: usize,
    ) -> Result<(), String> {
        let last = self.track[stream].last.unwrap_or(0);
        let found = read_back(js, self.subjects[stream].as_str(), last, &self.id_prefix).await?;
        self.settle(stream, &found.held);
        let t = &mut self.track[stream];
        t.last = Some(found.tip);
        t.read_back = false;
        Ok(())
    }

    /// Settles the pending lines of stream `stream` up to the last one JetStream holds
    /// (`held`: line ids): those it holds count as published; the others it missed, and they
    /// can no longer be stored in order, so they are counted and marked as lost.
    fn settle(&mut self, stream: usize, held: &HashSet<u64>) {
        let Some(end) = self
            .pending
            .iter()
            .rposition(|l| l.stream == stream && held.contains(&l.id))
        else {
            return;
        };
        let mut lost = Gap::default();
        let mut bytes = 0u64;
        let mut rest = VecDeque::with_capacity(self.pending.len());
        for (i, line) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if i > end || line.stream != stream {
                rest.push_back(line);
            } else if held.contains(&line.id) {
                self.stored(&line);
            } else {
                lost.add(1, line.ts, line.ts);
                bytes += line.payload.len() as u64;
            }
        }
        self.pending = rest;
        NatsEvent::Missed {
            subject: &self.subjects[stream],
            stream,
            lost,
            bytes,
        }
        .emit(&self.shared);
    }

    /// Counts `line` as published.
    fn stored(&self, line: &Line) {
        self.shared.nats().published.fetch_add(1, Relaxed);
        self.shared.release(1, line.payload.len() as u64);
    }

    fn refused(&mut self, line: &Line, why: &str) {
        NatsEvent::Refused {
            subject: &self.subjects[line.stream],
            reason: why,
            stream: line.stream,
            ts: line.ts,
            bytes: line.payload.len(),
        }
        .emit(&self.shared);
    }

    pub(super) fn on_ack(
        &mut self,
        ack: Result<
            async_nats::jetstream::publish::PublishAck,
            async_nats::jetstream::context::PublishError,
        >,
    ) {
        use async_nats::jetstream::context::PublishErrorKind as K;
        match ack {
            Ok(ack) => {
                self.confirmed = true;
                if let Some(line) = self.window.pop_front() {
                    let t = &mut self.track[line.stream];
                    t.in_flight = t.in_flight.saturating_sub(1);
                    if line.guarded && ack.duplicate {
                        // A copy sent before reached the server; later ones may have too.
                        tracing::debug!(subject = %self.subjects[line.stream], "Guarded publish was a duplicate: reading the subject back.");
                        t.read_back = true;
                    } else if line.guarded || t.last.is_none() {
                        // Stored right after `last` (or the subject's lone first line).
                        t.clean = true;
                    }
                    t.last = Some(ack.sequence);
                    // The gauge first: a reader that sees the line counted as published must
                    // not see it still in flight.
                    self.shared
                        .nats()
                        .in_flight
                        .store(self.window.len() as u64, Relaxed);
                    self.stored(&line);
                }
            }
            Err(e) if e.kind() == K::WrongLastSequence => {
                // The server holds a line of the subject after `last`: storing this one now
                // could put it after later lines. Read back what the server holds.
                if let Some(mut line) = self.window.pop_front() {
                    tracing::debug!(subject = %self.subjects[line.stream], "Guarded publish refused: reading the subject back.");
                    let t = &mut self.track[line.stream];
                    t.in_flight = t.in_flight.saturating_sub(1);
                    t.clean = false;
                    t.read_back = true;
                    line.ack = None;
                    self.pending.push_front(line);
                }
            }
            Err(e) if transient(e.kind()) => {
                if e.kind() == async_nats::jetstream::context::PublishErrorKind::StreamNotFound
                    && !self.warned_no_stream
                {
                    self.warned_no_stream = true;
                    tracing::warn!(subject = %self.subjects[self.window[0].stream], "No JetStream stream covers this subject: create one or set nats.stream_name; retrying.");
                }
                tracing::debug!(error = %e, "NATS publish failed; publishing the window again once connected.");
                self.set_up(false);
            }
            Err(e) => {
                if let Some(line) = self.window.pop_front() {
                    let t = &mut self.track[line.stream];
                    t.in_flight = t.in_flight.saturating_sub(1);
                    self.refused(&line, &e.to_string());
                }
            }
        }
        self.shared
            .nats()
            .in_flight
            .store(self.window.len() as u64, Relaxed);
    }
}

/// Failures worth retrying: the line may still be published once NATS is back.
fn transient(kind: async_nats::jetstream::context::PublishErrorKind) -> bool {
    use async_nats::jetstream::context::PublishErrorKind as K;
    matches!(
        kind,
        K::TimedOut | K::BrokenPipe | K::StreamNotFound | K::MaxAckPending
    )
}
