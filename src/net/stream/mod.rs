//! The supervisor of one stream: keeps a connection up forever.
//!
//! It starts connections, waits out the backoff after a failure (or the server's `Retry-After`,
//! or what is left of a venue maintenance the connection ended in, if longer; racing shutdown),
//! and after a healthy connection starts the backoff over: a connection that received data
//! (however briefly) or lasted `healthy_after` is followed after the initial delay with jitter
//! ([`Backoff::after_healthy`]), or the rest of a venue maintenance if longer, so only attempts
//! that fail or end without data make the delay grow. Each attempt's number since the last healthy connection
//! and the delay before it are in its `connected` or `connect_failed` event. For
//! `max_connection_age` runs make-before-break: a replacement is connected and subscribed while
//! the old connection keeps recording, and the old one is retired [`RETIRE_GRACE`] after the
//! new one delivers data (or after [`MAX_OVERLAP`]): what the venue sent the old one before the
//! new one's subscription took effect may still be on its way, or come through a gateway that
//! lags, and a retired connection still records what has reached the machine before it closes.
//! Both connections' records carry their own `conn`
//! number; the replacement's `connected` event names the connection it `replaces`, and the
//! old one's `disconnected` event has reason `replaced`, so the overlap is visible in the data.
//!
//! With [`Policy::stop_on_refusal`] (one-line mode) a stream whose connections have never
//! succeeded stops at the first attempt that failed for good (a permanent 4xx, a permanent
//! redirect, a rejected certificate: [`Refusal`]) instead of retrying it, and reports
//! [`Refused`] to the recorder, which shuts down. Once the stream has connected, such a failure
//! is retried like any other: the venue may be flapping.
//!
//! The supervisor owns the stream's settings and shared state, [`runtime::StreamRuntime`]
//! (`rt`), which every connection of the stream reads; what it counts and logs when it waits
//! before a reconnect is a `Reconnecting` connection event (`connection::event`).

pub mod runtime;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::net::backoff::Backoff;
use crate::net::connection::event::{ConnectionEvent, ReconnectWait};
use crate::net::connection::{Connection, Notice, Refusal};
use crate::observe::stats::ConnState;
use crate::queue::QueueTx;
use runtime::StreamRuntime;

/// Longest time the old connection is kept once its replacement is connected.
pub const MAX_OVERLAP: Duration = Duration::from_secs(30);
/// How long the old connection goes on recording after its replacement took over.
pub const RETIRE_GRACE: Duration = Duration::from_secs(2);

/// Supervisor settings besides the stream runtime.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Reconnect delay cap.
    pub backoff_max: Duration,
    /// A connection that lasted this long resets the backoff (as does one that received data).
    pub healthy_after: Duration,
    /// Planned reconnect age.
    pub max_connection_age: Option<Duration>,
    /// Stop, instead of retrying, when an attempt fails for good before any connection of the
    /// stream has succeeded (see the module doc).
    pub stop_on_refusal: bool,
}

/// A stream stopped because its first connection failed in a way retrying does not fix
/// ([`Policy::stop_on_refusal`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stream `{stream}`: the first connection to {} failed and retrying will not fix it: {}",
    refusal.url,
    refusal.error
)]
pub struct Refused {
    /// The stream's name.
    pub stream: String,
    /// How the attempt failed.
    pub refusal: Refusal,
}

struct Slot {
    conn: u64,
    retire: CancellationToken,
    connected_at: Option<Instant>,
}

/// Runs the stream until `shutdown`, then waits for its connections to finish. With
/// [`Policy::stop_on_refusal`], it stops early when its first connection fails for good and
/// sends why on `refused`.
pub async fn run(
    rt: Arc<StreamRuntime>,
    policy: Policy,
    queue: QueueTx,
    shutdown: CancellationToken,
    refused: mpsc::UnboundedSender<Refused>,
) {
    let (notify, mut notices) = mpsc::unbounded_channel();
    let tracker = TaskTracker::new();
    // `attempt`: failures in a row before this attempt, plus one; `waited`: the delay before it.
    let spawn = |replaces: Option<u64>, attempt: u32, waited: Duration| {
        let conn = rt
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let retire = CancellationToken::new();
        let c = Connection::new(
            rt.clone(),
            conn,
            replaces,
            queue.clone(),
            shutdown.clone(),
            retire.clone(),
            notify.clone(),
        )
        .after(attempt.saturating_add(1), waited);
        tracker.spawn(c.run());
        Slot {
            conn,
            retire,
            connected_at: None,
        }
    };
    let mut backoff = Backoff::new(policy.backoff_initial, policy.backoff_max);
    let mut active = Some(spawn(None, 0, Duration::ZERO));
    let mut pending: Option<Slot> = None;
    // When to start a new active connection after a failure, and the delay until then.
    let mut retry_at: Option<(Instant, Duration)> = None;
    // When to start a make-before-break replacement, and the delay until then after a failed
    // one (zero for a planned one).
    let mut replace_at: Option<(Instant, Duration)> = None;
    // When to retire the old connection even if the replacement has sent nothing yet.
    let mut overlap_until: Option<Instant> = None;
    // Replaced connections still recording through their grace, with when to retire them.
    let mut retiring: Vec<(Instant, CancellationToken)> = Vec::new();
    let far = || Instant::now() + Duration::from_secs(86_400 * 365);
    // Some connection of this supervisor got through the handshake.
    let mut ever_connected = false;
    loop {
        let wake = [
            retry_at.map(|r| r.0),
            replace_at.map(|r| r.0),
            overlap_until,
            retiring.first().map(|r| r.0),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(notice) = notices.recv() => match notice {
                Notice::Connected(c) => {
                    ever_connected = true;
                    let now = Instant::now();
                    if let Some(a) = active.as_mut().filter(|a| a.conn == c) {
                        a.connected_at = Some(now);
                        replace_at = policy.max_connection_age.map(|age| (now + age, Duration::ZERO));
                    } else if let Some(p) = pending.as_mut().filter(|p| p.conn == c) {
                        p.connected_at = Some(now);
                        overlap_until = Some(now + MAX_OVERLAP);
                    }
                }
                Notice::Ready(c) => {
                    // Data came: the stream is healthy again, whatever failed before.
                    if pending.as_ref().is_some_and(|p| p.conn == c) {
                        backoff.reset();
                        promote(&mut active, &mut pending, &mut replace_at, &mut overlap_until, &mut retiring, &policy);
                    } else if active.as_ref().is_some_and(|a| a.conn == c) {
                        backoff.reset();
                    }
                }
                Notice::ReplaceMe(c) => {
                    if pending.is_none() && active.as_ref().is_some_and(|a| a.conn == c) {
                        tracing::info!(stream = %rt.name, conn = c, "Opening a replacement connection at the venue's request.");
                        replace_at = None;
                        pending = Some(spawn(Some(c), backoff.attempts(), Duration::ZERO));
                    }
                }
                Notice::Ended { conn, connected, uptime, productive, retry_after, refusal } => {
                    ever_connected |= connected;
                    if active.as_ref().is_some_and(|a| a.conn == conn) {
                        active = None;
                        if let Some(refusal) = refusal.filter(|_| policy.stop_on_refusal && !ever_connected) {
                            ConnectionEvent::GaveUp { conn, url: &refusal.url }.emit(&rt);
                            let _ = refused.send(Refused { stream: rt.name.clone(), refusal });
                            break;
                        }
                        let healthy = productive || (connected && uptime >= policy.healthy_after);
                        if pending.is_some() {
                            if healthy {
                                backoff.reset();
                            }
                            promote(&mut active, &mut pending, &mut replace_at, &mut overlap_until, &mut retiring, &policy);
                        } else {
                            let delay = if healthy {
                                // A fresh start, but not before the venue's own wait is over.
                                let delay = backoff.after_healthy();
                                retry_after.map_or(delay, |wait| wait.max(delay))
                            } else {
                                reconnect_delay(&mut backoff, retry_after)
                            };
                            let wait = if retry_after.is_some_and(|wait| wait >= delay) {
                                ReconnectWait::ServerAsked
                            } else if healthy {
                                ReconnectWait::Healthy
                            } else {
                                ReconnectWait::Backoff
                            };
                            ConnectionEvent::Reconnecting {
                                delay,
                                attempt: backoff.attempts(),
                                productive,
                                wait,
                            }
                            .emit(&rt);
                            retry_at = Some((Instant::now() + delay, delay));
                        }
                    } else if pending.as_ref().is_some_and(|p| p.conn == conn) {
                        // The replacement failed; the active connection goes on. Try again later.
                        pending = None;
                        overlap_until = None;
                        let delay = reconnect_delay(&mut backoff, retry_after);
                        replace_at = Some((Instant::now() + delay, delay));
                    }
                    // Otherwise a retired connection finished closing: nothing to do.
                }
            },
            () = tokio::time::sleep_until(wake.unwrap_or_else(far)), if wake.is_some() => {
                let now = Instant::now();
                if let Some((_, waited)) = retry_at.filter(|r| r.0 <= now) {
                    retry_at = None;
                    active = Some(spawn(None, backoff.attempts(), waited));
                }
                if let Some((_, waited)) = replace_at.filter(|r| r.0 <= now) {
                    replace_at = None;
                    if let (Some(a), None) = (active.as_ref(), pending.as_ref()) {
                        tracing::info!(stream = %rt.name, conn = a.conn, "Connection reached max_connection_age: opening its replacement before closing it.");
                        pending = Some(spawn(Some(a.conn), backoff.attempts(), waited));
                    }
                }
                if overlap_until.is_some_and(|t| t <= now) {
                    promote(&mut active, &mut pending, &mut replace_at, &mut overlap_until, &mut retiring, &policy);
                }
                retiring.retain(|(at, retire)| {
                    if *at <= now {
                        retire.cancel();
                    }
                    *at > now
                });
            }
        }
    }

    tracker.close();
    tracker.wait().await;
    rt.stats.set_state(ConnState::Stopped);
}

/// The next backoff delay, or the server's `Retry-After` if that is longer: a server that says
/// when to come back is asked again no sooner (retrying early can lengthen a rate-limit ban).
fn reconnect_delay(backoff: &mut Backoff, retry_after: Option<Duration>) -> Duration {
    let delay = backoff.next_delay();
    retry_after.map_or(delay, |wait| wait.max(delay))
}

/// The replacement takes over: the old connection is told to close [`RETIRE_GRACE`] from now.
fn promote(
    active: &mut Option<Slot>,
    pending: &mut Option<Slot>,
    replace_at: &mut Option<(Instant, Duration)>,
    overlap_until: &mut Option<Instant>,
    retiring: &mut Vec<(Instant, CancellationToken)>,
    policy: &Policy,
) {
    let Some(new) = pending.take() else { return };
    if let Some(old) = active.take() {
        // Retired in the order they were replaced, so the first is the next due.
        retiring.push((Instant::now() + RETIRE_GRACE, old.retire));
    }
    *overlap_until = None;
    *replace_at = match (new.connected_at, policy.max_connection_age) {
        (Some(at), Some(age)) => Some((at + age, Duration::ZERO)),
        _ => None,
    };
    *active = Some(new);
}
