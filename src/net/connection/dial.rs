//! The attempt part of a connection: asking the venue's token endpoint for the URL when it has
//! one, the WebSocket handshake, the subscribe messages that follow it, and what a failed
//! attempt reports ([`Failure`]).

use std::time::Duration;

use crate::batch::Batch;
use crate::net::transport::{self, TransportError};

use super::{Connection, End, Refusal};

impl Connection {
    /// Dials the stream, first asking its token endpoint for the URL if it has one. Returns
    /// the connection, its URL masked, and the ping interval the venue asked for.
    pub(super) async fn dial(
        &self,
    ) -> Result<(transport::Socket, String, Option<Duration>), Failure> {
        let rt = &*self.rt;
        let max_wait = rt.spec.retry_after_max;
        let Some(step) = &rt.token else {
            return match transport::connect(&rt.spec).await {
                Ok(ws) => Ok((ws, rt.masked_url.clone(), None)),
                Err(e) => Err(Failure::transport(&rt.masked_url, &e, max_wait)),
            };
        };
        // Unique per connect: the process, the stream, the connection number, and chance.
        let connect_id = format!(
            "wsrec-{}-{}-{}-{:08x}",
            std::process::id(),
            rt.idx,
            self.conn,
            rand::random::<u32>()
        );
        let dial = step
            .fetch(&rt.spec, &connect_id)
            .await
            .map_err(|e| Failure {
                url: step.masked.clone(),
                error: e.message,
                step: Some("connect_token"),
                http_status: e.http_status,
                location: None,
                retry_after: e.retry_after.map(|d| d.min(max_wait)),
                permanent: false,
            })?;
        let masked = crate::config::mask_url(dial.url.as_str());
        tracing::debug!(stream = %rt.name, conn = self.conn, token_url = %step.masked, url = %masked, "Got a connect token.");
        let mut spec = rt.spec.clone();
        spec.url = dial.url;
        match transport::connect(&spec).await {
            Ok(ws) => Ok((ws, masked, dial.ping_interval)),
            Err(e) => Err(Failure::transport(&masked, &e, max_wait)),
        }
    }

    /// The `attempt` and `backoff_ms` fields of the `connected` and `connect_failed` events, and
    /// `budget_wait_ms` when the venue's per-IP connection budget held the attempt back.
    pub(super) fn attempt_fields(&self, f: &mut crate::batch::EventFields<'_>, held: Duration) {
        f.num("attempt", u64::from(self.attempt))
            .num("backoff_ms", self.waited.as_millis() as u64);
        if !held.is_zero() {
            f.num("budget_wait_ms", held.as_millis() as u64);
        }
    }

    pub(super) async fn subscribe(
        &self,
        ws: &mut transport::Socket,
        batch: &mut Batch,
    ) -> Result<(), End> {
        let rt = &*self.rt;
        let settle = rt
            .venue
            .as_ref()
            .map_or(Duration::ZERO, |v| v.subscribe_after_connect);
        if !settle.is_zero() && !rt.subscribe.is_empty() {
            // The venue asks for a pause between the handshake and the first request.
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Err(End::Shutdown),
                () = self.retire.cancelled() => return Err(End::Replaced),
                () = tokio::time::sleep(settle) => {}
            }
        }
        // What went out, for the `subscribed` event (with the times the venue asked for).
        let mut sent_texts: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(rt.subscribe.len());
        for msg in &rt.subscribe {
            if let Some(p) = &rt.pacer {
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => return Err(End::Shutdown),
                    () = self.retire.cancelled() => return Err(End::Replaced),
                    () = p.message() => {}
                }
            }
            // A venue that asks for the request's time gets the time it is sent at.
            let text = rt
                .venue
                .as_ref()
                .and_then(|v| crate::net::venue::protocol::stamp(v.family, msg, rt.clock.now_ns()))
                .map_or(
                    std::borrow::Cow::Borrowed(msg.as_str()),
                    std::borrow::Cow::Owned,
                );
            let sent = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Err(End::Shutdown),
                r = ws.send_text(&text) => r,
            };
            if let Err(e) = sent {
                return Err(End::Error(format!(
                    "sending a subscribe message failed: {e}"
                )));
            }
            sent_texts.push(text);
        }
        let in_url = rt.venue.as_ref().map_or(&[][..], |v| v.in_url.as_slice());
        if !rt.subscribe.is_empty() || !in_url.is_empty() {
            batch.push_event(rt.clock.now_ns(), "subscribed", |f| {
                f.num("count", rt.subscribe.len() as u64)
                    .strs("messages", sent_texts.iter().map(|t| &**t));
                if !in_url.is_empty() {
                    f.strs("in_url", in_url.iter().map(String::as_str));
                }
            });
            tracing::debug!(stream = %rt.name, conn = self.conn, count = rt.subscribe.len(), "Subscribe messages sent.");
        }
        Ok(())
    }
}

/// A failed connect attempt, as logged and recorded in its `connect_failed` event.
pub(super) struct Failure {
    /// The URL (masked) that failed: the token endpoint or the WebSocket URL.
    pub(super) url: String,
    /// What went wrong.
    pub(super) error: String,
    /// The step that failed, when it was not the WebSocket dial itself.
    pub(super) step: Option<&'static str>,
    /// The HTTP status of a refusal.
    pub(super) http_status: Option<u16>,
    /// Where a redirect pointed (masked).
    pub(super) location: Option<String>,
    /// The wait the server asked for, capped at `retry_after_max`.
    pub(super) retry_after: Option<Duration>,
    /// Retrying cannot help ([`TransportError::is_permanent`]). Only the WebSocket dial's own
    /// failures can be: a refused connect-token request is the venue's REST API, not the URL
    /// the user gave, and is retried.
    pub(super) permanent: bool,
}

impl Failure {
    /// A failed WebSocket dial of `url` (masked).
    fn transport(url: &str, e: &TransportError, max_wait: Duration) -> Self {
        Self {
            url: url.to_owned(),
            error: e.to_string(),
            step: None,
            http_status: e.http_status(),
            location: e.location().map(str::to_owned),
            retry_after: e.retry_after().map(|d| d.min(max_wait)),
            permanent: e.is_permanent(),
        }
    }

    /// What the supervisor is told of a failure retrying cannot help.
    pub(super) fn refusal(&self) -> Option<Refusal> {
        self.permanent.then(|| Refusal {
            url: self.url.clone(),
            http_status: self.http_status,
            error: self.error.clone(),
        })
    }
}
