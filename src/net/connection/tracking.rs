//! Venue tracking on one connection: what the venue's messages mean for its subscriptions
//! (acks, refusals, silence, maintenance, reconnect requests, heartbeat requests), as logged,
//! recorded and counted, and the replies and reconnect requests that follow.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::batch::Batch;
use crate::net::stream::runtime::VenueRuntime;
use crate::net::transport;
use crate::net::venue::track::{Outcome, Tracker};
use crate::observe::stats::StreamStats;

use super::event::ConnectionEvent;
use super::{Connection, End, Notice};

impl Connection {
    /// Logs and records what the venue's messages meant, and keeps the stream's count of
    /// failing subscriptions; replies and reconnect requests wait for [`Self::venue_actions`].
    pub(super) fn venue_outcomes(&self, v: &mut VenueState, ts: u64, batch: &mut Batch) {
        let rt = &*self.rt;
        for o in v.outcomes.drain(..) {
            match o {
                Outcome::Rejected { topics, reason } => {
                    ConnectionEvent::SubscriptionRejected {
                        conn: self.conn,
                        topics: &topics,
                        reason: &reason,
                    }
                    .emit(rt);
                    batch.push_event(ts, "subscription_rejected", |f| {
                        f.strs("topics", topics.iter().map(String::as_str))
                            .str("reason", &reason);
                    });
                }
                Outcome::Silent {
                    acked,
                    unacked,
                    after,
                } => {
                    ConnectionEvent::SubscriptionsSilent {
                        conn: self.conn,
                        acked: &acked,
                        unacked: &unacked,
                        after,
                    }
                    .emit(rt);
                    batch.push_event(ts, "subscription_silent", |f| {
                        f.strs("acknowledged", acked.iter().map(String::as_str))
                            .strs("not_acknowledged", unacked.iter().map(String::as_str))
                            .num("after_ms", after.as_millis() as u64);
                    });
                }
                Outcome::FirstData(topic) => {
                    // The message that brought it is the batch's last item: FirstData comes
                    // before any other outcome of that message, so no event follows it yet.
                    self.start_snapshot(&mut v.snapshot_tasks, &topic, batch.last_bytes());
                }
                Outcome::Live(topic) => {
                    ConnectionEvent::SubscriptionLive {
                        conn: self.conn,
                        topic: &topic,
                    }
                    .emit(rt);
                    batch.push_event(ts, "subscription_live", |f| {
                        f.str("topic", &topic);
                    });
                }
                Outcome::Maintenance { reason, at_most } => {
                    ConnectionEvent::VenueMaintenance {
                        conn: self.conn,
                        reason: &reason,
                        at_most,
                    }
                    .emit(rt);
                    batch.push_event(ts, "venue_maintenance", |f| {
                        f.str("reason", &reason)
                            .num("at_most_ms", at_most.as_millis() as u64);
                    });
                    v.maintenance_until = Some(Instant::now() + at_most);
                }
                Outcome::Reconnect(why) => {
                    // The venue's word ends a maintenance (Bitfinex's 20061).
                    v.maintenance_until = None;
                    if v.replace.is_none() {
                        ConnectionEvent::ReconnectRequested {
                            conn: self.conn,
                            reason: &why,
                        }
                        .emit(rt);
                        batch.push_event(ts, "reconnect_requested", |f| {
                            f.str("reason", &why);
                        });
                        v.replace = Some(why);
                    }
                }
                Outcome::Reply(text) => v.replies.push(text),
                Outcome::ConnectsLeft(left) => {
                    ConnectionEvent::ConnectsLeft {
                        conn: self.conn,
                        left,
                    }
                    .emit(rt);
                    if let Some(p) = &rt.pacer {
                        p.connects_left(left);
                    }
                }
            }
        }
        v.recount(&rt.stats);
    }

    /// Starts the REST depth snapshot task of `topic` when its channel's book starts from one
    /// (the venue's procedure: after the connection's first difference, `first`).
    fn start_snapshot(
        &self,
        tasks: &mut Option<(CancellationToken, DropGuard)>,
        topic: &str,
        first: Option<&[u8]>,
    ) {
        let Some(setup) = &self.rt.snapshots else {
            return;
        };
        let Some((rest, symbol)) = setup.preset.rest_snapshot_for(topic) else {
            return;
        };
        let cancel = tasks
            .get_or_insert_with(|| {
                let token = CancellationToken::new();
                let guard = token.clone().drop_guard();
                (token, guard)
            })
            .0
            .clone();
        let job = super::snapshot::Job {
            rt: self.rt.clone(),
            conn: self.conn,
            queue: self.queue.clone(),
            rest,
            symbol,
            first_id: first.and_then(rest.first_id),
            cancel,
        };
        tokio::spawn(job.run());
    }

    /// Sends the replies the venue asked for and passes a reconnect request to the supervisor
    /// (once); `Some` if sending failed and the connection is over.
    pub(super) async fn venue_actions(
        &self,
        ws: &mut transport::Socket,
        v: &mut VenueState,
    ) -> Option<End> {
        for text in v.replies.drain(..) {
            match tokio::time::timeout(Duration::from_secs(10), ws.send_text(&text)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Some(End::Error(format!(
                        "answering the venue's heartbeat request failed: {e}"
                    )));
                }
                Err(_) => {
                    return Some(End::Error(
                        "answering the venue's heartbeat request timed out".to_owned(),
                    ));
                }
            }
        }
        if v.replace.is_some() && !v.replace_sent {
            v.replace_sent = true;
            let _ = self.notify.send(Notice::ReplaceMe(self.conn));
        }
        None
    }
}

/// Whether a venue's text message is data (of some topic, or one that cannot be told; a
/// Bitfinex channel frame, heartbeats included: they come only on a live subscription), as
/// opposed to an ack, a refusal, a pong or a request.
pub(super) fn is_data(family: crate::net::venue::Family, msg: &[u8]) -> bool {
    crate::net::venue::protocol::classify(family, msg).is_data()
}

/// A venue connection's subscription tracking and pending actions.
pub(super) struct VenueState {
    /// The venue's protocol family.
    pub(super) family: crate::net::venue::Family,
    pub(super) tracker: Tracker,
    pub(super) outcomes: Vec<Outcome>,
    /// Messages to send as soon as the batch is queued (Deribit's `test_request` answers).
    pub(super) replies: Vec<String>,
    /// The venue asked for a reconnect, for this reason.
    pub(super) replace: Option<String>,
    /// The supervisor was told.
    pub(super) replace_sent: bool,
    /// Failing subscriptions this connection added to the stream's count.
    pub(super) counted: u64,
    /// A data message came (see [`is_data`]).
    pub(super) delivered: bool,
    /// The venue is in maintenance until then at the latest.
    pub(super) maintenance_until: Option<Instant>,
    /// The REST snapshot tasks of this connection: cancelled when it ends (the guard is
    /// dropped with this state).
    pub(super) snapshot_tasks: Option<(CancellationToken, DropGuard)>,
}

impl VenueState {
    /// The tracking of a new connection of the venue stream `v`; `snapshots`: the stream
    /// fetches REST depth snapshots, so each topic's first data is reported.
    pub(super) fn new(v: &VenueRuntime, snapshots: bool) -> Self {
        let tracker = Tracker::new(v.family, &v.requests, v.first_data_timeout);
        Self {
            family: v.family,
            tracker: if snapshots {
                tracker.report_first_data()
            } else {
                tracker
            },
            outcomes: Vec::new(),
            replies: Vec::new(),
            replace: None,
            replace_sent: false,
            counted: 0,
            delivered: false,
            maintenance_until: None,
            snapshot_tasks: None,
        }
    }

    /// Brings the stream's count of failing subscriptions up to date with this connection's.
    fn recount(&mut self, stats: &StreamStats) {
        let now = self.tracker.flagged();
        if now > self.counted {
            stats
                .subscriptions_failed
                .fetch_add(now - self.counted, Relaxed);
        } else if now < self.counted {
            stats
                .subscriptions_failed
                .fetch_sub(self.counted - now, Relaxed);
        }
        self.counted = now;
    }

    /// At the connection's end: takes its failing subscriptions back out of the stream's count
    /// and returns when a venue maintenance that is still under way is over at the latest.
    pub(super) fn finish(self, stats: &StreamStats) -> Option<Instant> {
        // This connection's failing subscriptions are judged again on the next one.
        stats.subscriptions_failed.fetch_sub(self.counted, Relaxed);
        self.maintenance_until.filter(|t| *t > Instant::now())
    }
}
