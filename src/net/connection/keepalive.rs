//! Keepalive and liveness of one connection: protocol and app-level pings, the deadline for
//! their replies (`pong_timeout`), and the silence limit (`silence_timeout`).

use std::time::Duration;

use tokio::time::Instant;

use crate::net::stream::runtime::StreamRuntime;
use crate::net::transport;

use super::End;

/// Keepalive and liveness deadlines of one connection.
pub(super) struct Keepalive {
    /// When the next protocol ping is due.
    next_ping: Option<Instant>,
    /// When the next app-level ping is due.
    next_app_ping: Option<Instant>,
    /// A ping is unanswered and must be answered by then.
    pong_deadline: Option<Instant>,
    /// An app-level ping is unanswered and must be answered by then.
    app_reply_deadline: Option<Instant>,
    /// When the last data message arrived (or the connection started).
    last_data: Instant,
    ping_interval: Option<Duration>,
    app_ping_interval: Option<Duration>,
    pong_timeout: Option<Duration>,
    silence_timeout: Option<Duration>,
}

impl Keepalive {
    /// The deadlines of a new connection; `server_ping` is the ping interval the venue asked
    /// for (its connect token answer), which the stream's own ping (the app-level one if it has
    /// one) never exceeds.
    pub(super) fn new(rt: &StreamRuntime, server_ping: Option<Duration>) -> Self {
        let now = Instant::now();
        let at_most = |d: Option<Duration>| match (d, server_ping) {
            (Some(d), Some(asked)) => Some(d.min(asked)),
            (d, _) => d,
        };
        let app_ping_interval = at_most(rt.app_ping.as_ref().and(rt.app_ping_interval));
        let ping_interval = if app_ping_interval.is_some() {
            rt.ping_interval
        } else {
            at_most(rt.ping_interval)
        };
        Self {
            next_ping: ping_interval.map(|d| now + d),
            next_app_ping: app_ping_interval.map(|d| now + d),
            pong_deadline: None,
            app_reply_deadline: None,
            last_data: now,
            ping_interval,
            app_ping_interval,
            pong_timeout: rt.pong_timeout,
            silence_timeout: rt.silence_timeout,
        }
    }

    pub(super) fn next_deadline(&self) -> Instant {
        let silence = self.silence_timeout.map(|d| self.last_data + d);
        [
            self.next_ping,
            self.next_app_ping,
            self.pong_deadline,
            self.app_reply_deadline,
            silence,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// A batch with messages came: the silence clock starts over.
    #[inline]
    pub(super) fn on_data(&mut self) {
        self.last_data = Instant::now();
    }

    /// A text message came: it answers an unanswered app-level ping if it contains `reply` (the
    /// stream's `app_pong_contains`).
    #[inline]
    pub(super) fn on_text(&mut self, payload: &[u8], reply: Option<&[u8]>) {
        if self.app_reply_deadline.is_some()
            && let Some(needle) = reply
            && memchr::memmem::find(payload, needle).is_some()
        {
            self.app_reply_deadline = None;
        }
    }

    /// A pong came: the protocol ping is answered.
    #[inline]
    pub(super) fn on_pong(&mut self) {
        self.pong_deadline = None;
    }

    /// Checks the liveness rules and sends what is due; `Err` ends the connection.
    pub(super) async fn on_timer(
        &mut self,
        ws: &mut transport::Socket,
        rt: &StreamRuntime,
    ) -> Result<(), End> {
        let now = Instant::now();
        if let Some(timeout) = self.pong_timeout
            && (self.pong_deadline.is_some_and(|d| d <= now)
                || self.app_reply_deadline.is_some_and(|d| d <= now))
        {
            return Err(End::PongTimeout(timeout));
        }
        if let Some(silence) = self.silence_timeout
            && self.last_data + silence <= now
        {
            return Err(End::SilenceTimeout(silence));
        }
        // A peer that stops reading would block a send forever; bound it.
        let send_limit = self.pong_timeout.unwrap_or(Duration::from_secs(10));
        if let (Some(at), Some(every)) = (self.next_ping, self.ping_interval)
            && at <= now
        {
            match tokio::time::timeout(send_limit, ws.send_ping()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(End::Error(format!("sending a ping failed: {e}"))),
                Err(_) => return Err(End::PongTimeout(send_limit)),
            }
            if self.pong_deadline.is_none() {
                self.pong_deadline = self.pong_timeout.map(|t| now + t);
            }
            self.next_ping = Some(now + every);
        }
        if let (Some(at), Some(every), Some(text)) = (
            self.next_app_ping,
            self.app_ping_interval,
            rt.app_ping.as_deref(),
        ) && at <= now
        {
            // Gate's ping carries the time it is sent at, as its requests do.
            let stamped = rt.venue.as_ref().and_then(|v| {
                crate::net::venue::protocol::stamp(v.family, text, rt.clock.now_ns())
            });
            let text = stamped.as_deref().unwrap_or(text);
            match tokio::time::timeout(send_limit, ws.send_text(text)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(End::Error(format!(
                        "sending the app-level ping failed: {e}"
                    )));
                }
                Err(_) => return Err(End::PongTimeout(send_limit)),
            }
            if self.app_reply_deadline.is_none() && rt.app_pong_contains.is_some() {
                self.app_reply_deadline = self.pong_timeout.map(|t| now + t);
            }
            self.next_app_ping = Some(now + every);
        }
        Ok(())
    }
}
