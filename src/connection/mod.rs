//! One connection of a stream, from dial to disconnect: connect, subscribe, read, keep alive,
//! check liveness, and report how it ended.
//!
//! The read loop is the hot path. After each wake-up it takes every frame that is ready without
//! waiting, copies their payloads into one [`Batch`] with one receive timestamp per socket read
//! (refreshed every few frames), and queues the batch in a single hand-off. Lifecycle events go
//! into the same batches, so the data shows exactly where a connection began and ended.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::record::{Batch, Kind, QueueTx, Sent};
use crate::stats::{ConnState, StreamStats};
use crate::transport::{self, ConnectSpec, Incoming, TransportError};
use crate::venue::track::{Outcome, Tracker};

/// Payload bytes after which a batch is handed over even if more frames are ready (~300 small
/// messages: the hand-off cost is spread thin, and the queue's byte bound holds many batches).
const BATCH_BYTES: usize = 64 * 1024;
/// Frames between two reads of the clock while draining ready frames.
const FRAMES_PER_TIMESTAMP: usize = 16;
/// How long a close frame may take to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Most frames taken per wake-up, control frames included, so a server streaming pongs or
/// other frames that add no message cannot keep the task from checking shutdown and timers.
const FRAMES_PER_WAKE: usize = 8192;

/// Per-stream settings and shared state every connection of the stream uses.
#[derive(Debug)]
pub struct StreamRuntime {
    /// Index of the stream in the config (and in the writer).
    pub idx: usize,
    /// Stream name, for logs.
    pub name: String,
    /// The URL with secrets masked, for logs and records.
    pub masked_url: String,
    /// How to dial.
    pub spec: ConnectSpec,
    /// Subscribe messages, sent in order after every connect.
    pub subscribe: Vec<String>,
    /// Protocol ping interval.
    pub ping_interval: Option<Duration>,
    /// Deadline for a pong or app-level reply.
    pub pong_timeout: Option<Duration>,
    /// App-level ping text.
    pub app_ping: Option<String>,
    /// App-level ping interval.
    pub app_ping_interval: Option<Duration>,
    /// Bytes whose presence in a message marks it as the app-level reply.
    pub app_pong_contains: Option<Vec<u8>>,
    /// No data for this long forces a reconnect.
    pub silence_timeout: Option<Duration>,
    /// TLS verification is off (warned about at every connect).
    pub insecure: bool,
    /// Stream sequence counter, shared by overlapping connections and by the stream's shards.
    pub seq: Arc<AtomicU64>,
    /// Next connection number of the stream, shared by its shards.
    pub next_conn: Arc<AtomicU64>,
    /// This runtime's shard and the stream's shard count (a venue stream whose topics need
    /// several connections has one runtime per shard).
    pub shard: (usize, usize),
    /// Venue preset streams: what each subscribe message asks for, to follow acks and data.
    pub venue: Option<VenueRuntime>,
    /// Spacing of connects and subscribe messages, shared with every stream of the same venue.
    pub pacer: Option<Arc<crate::venue::pace::Pacer>>,
    /// The REST call made before every connect for the URL to dial (KuCoin's connect token);
    /// without it the stream dials `spec.url`.
    pub token: Option<crate::venue::token::TokenStep>,
    /// The stream's counters.
    pub stats: Arc<StreamStats>,
    /// Receive-time clock.
    pub clock: Clock,
    /// Most messages in one batch (never more than the queue can hold).
    pub batch_max: usize,
    /// Told when a batch was cut short with more frames ready, so background compression
    /// keeps out of the way while the network is ahead of us.
    pub pressure: Arc<crate::record::Pressure>,
}

/// What a venue stream's connections follow.
#[derive(Debug)]
pub struct VenueRuntime {
    /// The protocol family.
    pub family: crate::venue::Family,
    /// Per subscribe message: topics and request id (the topics named in the URL first, if
    /// any, without id).
    pub requests: Vec<(Vec<crate::venue::Topic>, Option<u64>)>,
    /// Topics the connection URL names itself (no subscribe message), for the `subscribed`
    /// event.
    pub in_url: Vec<crate::venue::Topic>,
    /// How long a topic may go without data before it is reported.
    pub first_data_timeout: Option<Duration>,
    /// How long to wait after the handshake before the first subscribe message (the preset's
    /// `subscribe_after_connect`).
    pub subscribe_after_connect: Duration,
}

/// What a connection tells its stream's supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The handshake finished and the subscribe messages went out.
    Connected(u64),
    /// The first data message arrived (see [`Connection::run`] for what counts as data): the
    /// connection is healthy.
    Ready(u64),
    /// The venue asked this connection to reconnect: replace it, make-before-break.
    ReplaceMe(u64),
    /// The connection is over.
    Ended {
        /// Connection number.
        conn: u64,
        /// Whether the handshake had succeeded.
        connected: bool,
        /// How long it was connected.
        uptime: Duration,
        /// Whether it received data (it sent [`Notice::Ready`]): a healthy connection, whatever
        /// its length.
        productive: bool,
        /// The wait the server asked for with `Retry-After` (already capped at
        /// `retry_after_max`), when it refused the upgrade with one; or what is left of a venue
        /// maintenance the connection ended in.
        retry_after: Option<Duration>,
    },
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Shutdown,
    Replaced,
    Closed { code: Option<u16>, reason: String },
    Error(String),
    TooLarge(String),
    SilenceTimeout(Duration),
    PongTimeout(Duration),
    WriterGone,
}

impl End {
    fn reason(&self) -> &'static str {
        match self {
            End::Shutdown => "shutdown",
            End::Replaced => "replaced",
            End::Closed { .. } => "closed_by_server",
            End::Error(_) => "error",
            End::TooLarge(_) => "message_too_large",
            End::SilenceTimeout(_) => "silence_timeout",
            End::PongTimeout(_) => "pong_timeout",
            End::WriterGone => "writer_stopped",
        }
    }

    fn detail(&self) -> String {
        match self {
            End::Shutdown => "recorder shutting down".to_owned(),
            End::Replaced => "planned reconnect: a newer connection took over".to_owned(),
            End::Closed { code, reason } => match code {
                Some(c) => format!("server closed the connection with code {c} {reason:?}"),
                None => "server closed the connection without a code".to_owned(),
            },
            End::Error(e) | End::TooLarge(e) => e.clone(),
            End::SilenceTimeout(d) => format!("no message for {d:?} (silence_timeout)"),
            End::PongTimeout(d) => format!("no reply to a ping within {d:?} (pong_timeout)"),
            End::WriterGone => "the writer stopped".to_owned(),
        }
    }

    /// Whether we (not the server) end it, and so owe a close frame.
    fn we_close(&self) -> bool {
        !matches!(self, End::Closed { .. } | End::Error(_))
    }
}

/// One connection attempt and, if it succeeds, its whole life.
pub struct Connection {
    /// The stream's settings.
    pub rt: Arc<StreamRuntime>,
    /// Connection number within the stream.
    pub conn: u64,
    /// The older connection this one replaces (make-before-break), if any.
    pub replaces: Option<u64>,
    /// Where batches go.
    pub queue: QueueTx,
    /// Recorder shutdown.
    pub shutdown: CancellationToken,
    /// Cancelled when a newer connection has taken over.
    pub retire: CancellationToken,
    /// Reports to the supervisor.
    pub notify: mpsc::UnboundedSender<Notice>,
    /// Which attempt this is since the stream's last healthy connection (1: the first).
    attempt: u32,
    /// How long the supervisor waited before this attempt (backoff or `Retry-After`).
    waited: Duration,
    /// Messages queued so far on this connection.
    sent_messages: AtomicU64,
    /// Messages dropped since the last `dropped` event was recorded.
    dropped_pending: AtomicU64,
    /// Data came (the supervisor was told with [`Notice::Ready`]).
    productive: AtomicBool,
}

impl Connection {
    /// A connection ready to [`run`](Self::run).
    pub fn new(
        rt: Arc<StreamRuntime>,
        conn: u64,
        replaces: Option<u64>,
        queue: QueueTx,
        shutdown: CancellationToken,
        retire: CancellationToken,
        notify: mpsc::UnboundedSender<Notice>,
    ) -> Self {
        Self {
            rt,
            conn,
            replaces,
            queue,
            shutdown,
            retire,
            notify,
            attempt: 1,
            waited: Duration::ZERO,
            sent_messages: AtomicU64::new(0),
            dropped_pending: AtomicU64::new(0),
            productive: AtomicBool::new(false),
        }
    }

    /// Marks this as attempt number `attempt` since the stream's last healthy connection, made
    /// after waiting `waited`; both are recorded in its `connected` or `connect_failed` event.
    #[must_use]
    pub fn after(mut self, attempt: u32, waited: Duration) -> Self {
        self.attempt = attempt;
        self.waited = waited;
        self
    }

    /// Runs the connection to its end and reports [`Notice::Ended`].
    ///
    /// When the first data message arrives it reports [`Notice::Ready`]. On a venue stream data
    /// is a message the venue's protocol tells apart as data (binary ones as its family reads
    /// them, [`Tracker::on_binary`]): acks, refusals, pongs and requests are not. Elsewhere
    /// acks cannot be told from data, so as many
    /// messages as there are subscribe messages are taken to be their acks (or refusals) and
    /// only the messages beyond those are data (every message, on a stream that sends no
    /// subscribe message).
    pub async fn run(self) {
        let started = Instant::now();
        let life = self.run_inner().await;
        let uptime = if life.connected {
            life.uptime
        } else {
            started.elapsed()
        };
        let _ = self.notify.send(Notice::Ended {
            conn: self.conn,
            connected: life.connected,
            uptime,
            productive: life.productive,
            retry_after: life.retry_after,
        });
    }

    fn new_batch(&self) -> Batch {
        Batch::new(self.rt.idx, self.conn)
    }

    /// Whether it connected, how long it was up, whether it received data, and the
    /// `Retry-After` of a refusal.
    async fn run_inner(&self) -> Life {
        let rt = &*self.rt;
        let stopped = Life {
            connected: false,
            uptime: Duration::ZERO,
            productive: false,
            retry_after: None,
        };
        if self.replaces.is_none() {
            rt.stats.set_state(ConnState::Connecting);
        }
        let mut held = Duration::ZERO;
        if let Some(p) = &rt.pacer {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return stopped,
                w = p.connect() => held = w,
            }
        }
        if held >= Duration::from_secs(1) {
            let budget = rt
                .pacer
                .as_ref()
                .and_then(|p| p.connect_budget())
                .map_or("", |b| b.name());
            tracing::info!(stream = %rt.name, conn = self.conn, held_ms = held.as_millis() as u64, budget,
                "Connect held back by the venue's per-IP connection budget (wsrec uses 80% of it, so a reconnect storm never reaches the venue's limit).");
        }
        let dialled = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return stopped,
            r = self.dial() => r,
        };
        let (mut ws, url, server_ping) = match dialled {
            Ok(d) => d,
            Err(f) => {
                rt.stats.connect_failures.fetch_add(1, Relaxed);
                rt.stats.set_last_error(&f.error);
                tracing::warn!(stream = %rt.name, conn = self.conn, url = %f.url, step = f.step.unwrap_or("connect"), error = %f.error, "Connection attempt failed.");
                let mut batch = self.new_batch();
                batch.push_event(rt.clock.now_ns(), "connect_failed", |e| {
                    e.str("url", &f.url).str("error", &f.error);
                    if let Some(step) = f.step {
                        e.str("step", step);
                    }
                    if let Some(code) = f.http_status {
                        e.num("http_status", u64::from(code));
                    }
                    if let Some(to) = &f.location {
                        e.str("location", to);
                    }
                    if let Some(wait) = f.retry_after {
                        e.num("retry_after_ms", wait.as_millis() as u64);
                    }
                    self.attempt_fields(e, held);
                });
                self.queue.send(batch, &mut 0).await;
                return Life {
                    retry_after: f.retry_after,
                    ..stopped
                };
            }
        };
        let connected_at = Instant::now();
        rt.stats.connections.fetch_add(1, Relaxed);
        rt.stats.set_state(ConnState::Connected);
        if rt.insecure {
            tracing::warn!(stream = %rt.name, url = %rt.masked_url, "TLS CERTIFICATE VERIFICATION IS OFF (insecure = true): this connection can be intercepted.");
        }
        let extensions = ws.extensions().unwrap_or("").to_owned();
        tracing::info!(stream = %rt.name, conn = self.conn, url = %url, extensions, "Connected.");
        if rt.spec.deflate.is_some() && extensions.is_empty() {
            tracing::info!(stream = %rt.name, conn = self.conn, "The server declined permessage-deflate; receiving uncompressed.");
        }
        let mut batch = self.new_batch();
        batch.push_event(rt.clock.now_ns(), "connected", |f| {
            f.str("url", &url)
                .str("host", crate::fsutil::host_name())
                .num("pid", u64::from(std::process::id()));
            if let Some(old) = self.replaces {
                f.num("replaces", old);
            }
            if rt.shard.1 > 1 {
                f.num("shard", rt.shard.0 as u64)
                    .num("shards", rt.shard.1 as u64);
            }
            if !extensions.is_empty() {
                f.str("extensions", &extensions);
            }
            f.str(
                "ts_source",
                if ws.kernel_stamps() { "kernel" } else { "read" },
            );
            self.attempt_fields(f, held);
        });

        let (end, maintenance) = match self.subscribe(&mut ws, &mut batch).await {
            Err(end) => (end, None),
            Ok(()) => {
                let _ = self.notify.send(Notice::Connected(self.conn));
                self.read_loop(&mut ws, &mut batch, server_ping).await
            }
        };
        let messages = self.messages_in_conn(&batch);
        if end.we_close() {
            let going_away = matches!(end, End::Shutdown | End::Replaced);
            ws.close(going_away, end.reason(), CLOSE_WAIT).await;
        } else if matches!(end, End::Closed { .. }) {
            ws.finish_close(CLOSE_WAIT).await;
        }
        let uptime = connected_at.elapsed();
        let detail = end.detail();
        match &end {
            End::Shutdown | End::Replaced => {
                tracing::info!(stream = %rt.name, conn = self.conn, reason = end.reason(), messages, "Disconnected: {detail}.");
            }
            _ => {
                rt.stats.disconnects.fetch_add(1, Relaxed);
                rt.stats.set_last_error(&detail);
                tracing::warn!(stream = %rt.name, conn = self.conn, reason = end.reason(), messages, "Disconnected: {detail}.");
            }
        }
        self.flush(&mut batch).await;
        let unmarked = self.dropped_pending.swap(0, Relaxed);
        if unmarked > 0 {
            batch.push_event(rt.clock.now_ns(), "dropped", |f| {
                f.num("count", unmarked).str("policy", "drop_newest");
            });
        }
        batch.push_event(rt.clock.now_ns(), "disconnected", |f| {
            f.str("reason", end.reason());
            if let End::Closed { code, reason } = &end {
                if let Some(c) = code {
                    f.num("code", u64::from(*c));
                }
                f.str("close_reason", reason);
            }
            f.str("detail", &detail)
                .num("messages", messages)
                .num("duration_ms", uptime.as_millis() as u64);
        });
        self.flush(&mut batch).await;
        // A connection lost during the venue's maintenance is not replaced before its end.
        let retry_after = maintenance.map(|until| until - Instant::now());
        if let Some(wait) = retry_after {
            tracing::info!(stream = %rt.name, conn = self.conn, wait_ms = wait.as_millis() as u64,
                "The venue's maintenance is under way: reconnecting once it is over at the latest.");
        }
        Life {
            connected: true,
            uptime,
            productive: self.productive.load(Relaxed),
            retry_after,
        }
    }

    /// Dials the stream, first asking its token endpoint for the URL if it has one. Returns
    /// the connection, its URL masked, and the ping interval the venue asked for.
    async fn dial(&self) -> Result<(transport::Connection, String, Option<Duration>), Failure> {
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
    fn attempt_fields(&self, f: &mut crate::record::EventFields<'_>, held: Duration) {
        f.num("attempt", u64::from(self.attempt))
            .num("backoff_ms", self.waited.as_millis() as u64);
        if !held.is_zero() {
            f.num("budget_wait_ms", held.as_millis() as u64);
        }
    }

    /// Messages this connection received so far (sent batches plus the one in hand).
    fn messages_in_conn(&self, batch: &Batch) -> u64 {
        self.sent_messages.load(Relaxed) + batch.messages as u64
    }

    async fn subscribe(
        &self,
        ws: &mut transport::Connection,
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
                .and_then(|v| crate::venue::wire::stamp(v.family, msg, rt.clock.now_ns()))
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

    /// Reads until the connection ends; with it, when a venue maintenance that is still under
    /// way is over at the latest (no reconnect before then).
    async fn read_loop(
        &self,
        ws: &mut transport::Connection,
        batch: &mut Batch,
        server_ping: Option<Duration>,
    ) -> (End, Option<Instant>) {
        let rt = &*self.rt;
        let mut venue = rt.venue.as_ref().map(|v| VenueState {
            family: v.family,
            tracker: Tracker::new(v.family, &v.requests, v.first_data_timeout),
            outcomes: Vec::new(),
            replies: Vec::new(),
            replace: None,
            replace_sent: false,
            counted: 0,
            delivered: false,
            maintenance_until: None,
        });
        let end = self.read_frames(ws, batch, &mut venue, server_ping).await;
        let mut maintenance = None;
        if let Some(v) = &venue {
            // This connection's failing subscriptions are judged again on the next one.
            rt.stats.subscriptions_failed.fetch_sub(v.counted, Relaxed);
            maintenance = v.maintenance_until.filter(|t| *t > Instant::now());
        }
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
        ws: &mut transport::Connection,
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
        loop {
            let first = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return End::Shutdown,
                () = self.retire.cancelled() => return End::Replaced,
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
            let mut ts = receive_ts(ws, &rt.clock);
            let mut end = self.take(first, ts, batch, &mut keepalive, venue);
            let mut n = 1;
            loop {
                if end.is_some() {
                    break;
                }
                if batch.messages >= rt.batch_max
                    || batch.data.len() >= BATCH_BYTES
                    || n >= FRAMES_PER_WAKE
                {
                    rt.pressure.mark_backlog();
                    break;
                }
                let Some(next) = ws.try_next() else { break };
                if ws.kernel_stamps() {
                    // The stamp of the read that completed this frame (a load, no clock call).
                    ts = receive_ts(ws, &rt.clock);
                } else if n % FRAMES_PER_TIMESTAMP == 0 {
                    ts = rt.clock.now_ns();
                }
                n += 1;
                end = self.take(next, ts, batch, &mut keepalive, venue);
            }
            if batch.messages > 0 {
                keepalive.last_data = Instant::now();
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

    /// Logs and records what the venue's messages meant, and keeps the stream's count of
    /// failing subscriptions; replies and reconnect requests wait for [`Self::venue_actions`].
    fn venue_outcomes(&self, v: &mut VenueState, ts: u64, batch: &mut Batch) {
        let rt = &*self.rt;
        for o in v.outcomes.drain(..) {
            match o {
                Outcome::Rejected { topics, reason } => {
                    tracing::error!(stream = %rt.name, conn = self.conn, topics = ?topics, reason, "The venue refused a subscription.");
                    rt.stats
                        .set_last_error(&format!("subscription refused: {reason}"));
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
                    tracing::error!(stream = %rt.name, conn = self.conn, acknowledged = ?acked, not_acknowledged = ?unacked, after = ?after,
                        "Subscriptions deliver no data (first_data_timeout). A quiet market explains it for some channels; a wrong URL for the channel (e.g. Binance USDⓈ-M market streams on the legacy root URL) or a refused subscription for others.");
                    rt.stats.set_last_error(&format!(
                        "{} subscriptions without data after {after:?}",
                        acked.len() + unacked.len()
                    ));
                    batch.push_event(ts, "subscription_silent", |f| {
                        f.strs("acknowledged", acked.iter().map(String::as_str))
                            .strs("not_acknowledged", unacked.iter().map(String::as_str))
                            .num("after_ms", after.as_millis() as u64);
                    });
                }
                Outcome::Live(topic) => {
                    tracing::info!(stream = %rt.name, conn = self.conn, topic, "A subscription reported as failing delivers data now.");
                    batch.push_event(ts, "subscription_live", |f| {
                        f.str("topic", &topic);
                    });
                }
                Outcome::Maintenance { reason, at_most } => {
                    tracing::warn!(stream = %rt.name, conn = self.conn, reason, at_most = ?at_most,
                        "The venue is in maintenance: keeping the connection, and no reconnect until the venue says it is over (or it has lasted as long as it may).");
                    rt.stats
                        .set_last_error(&format!("venue maintenance: {reason}"));
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
                        tracing::info!(stream = %rt.name, conn = self.conn, reason = %why, "The venue asked for a reconnect: opening a replacement before closing this connection.");
                        batch.push_event(ts, "reconnect_requested", |f| {
                            f.str("reason", &why);
                        });
                        v.replace = Some(why);
                    }
                }
                Outcome::Reply(text) => v.replies.push(text),
                Outcome::ConnectsLeft(left) => {
                    tracing::debug!(stream = %rt.name, conn = self.conn, left, "The venue counts the connects it still allows.");
                    if let Some(p) = &rt.pacer {
                        p.connects_left(left);
                    }
                }
            }
        }
        let now = v.tracker.flagged();
        if now > v.counted {
            rt.stats
                .subscriptions_failed
                .fetch_add(now - v.counted, Relaxed);
        } else if now < v.counted {
            rt.stats
                .subscriptions_failed
                .fetch_sub(v.counted - now, Relaxed);
        }
        v.counted = now;
    }

    /// Sends the replies the venue asked for and passes a reconnect request to the supervisor
    /// (once); `Some` if sending failed and the connection is over.
    async fn venue_actions(
        &self,
        ws: &mut transport::Connection,
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

    /// Puts one frame into the batch; returns how the connection ends if it does.
    #[inline]
    fn take(
        &self,
        frame: Result<Incoming, TransportError>,
        ts: u64,
        batch: &mut Batch,
        keepalive: &mut Keepalive,
        venue: &mut Option<VenueState>,
    ) -> Option<End> {
        match frame {
            Ok(Incoming::Text(payload)) => {
                if keepalive.app_reply_deadline.is_some()
                    && let Some(needle) = &self.rt.app_pong_contains
                    && memchr::memmem::find(&payload, needle).is_some()
                {
                    keepalive.app_reply_deadline = None;
                }
                batch.push_message(ts, Kind::Text, &payload);
                if let Some(v) = venue.as_mut() {
                    if !v.delivered {
                        v.delivered = is_data(v.family, &payload);
                    }
                    v.tracker.on_message(&payload, &mut v.outcomes);
                    if !v.outcomes.is_empty() {
                        self.venue_outcomes(v, ts, batch);
                    }
                }
                None
            }
            Ok(Incoming::Binary(payload)) => {
                batch.push_message(ts, Kind::Binary, &payload);
                if let Some(v) = venue.as_mut() {
                    // Recorded as received above; the family reads acks, errors, pings and
                    // topics out of it (HTX gzip, MEXC protobuf, Upbit JSON) as it does text.
                    let data = v.tracker.on_binary(&payload, !v.delivered, &mut v.outcomes);
                    v.delivered |= data;
                    if !v.outcomes.is_empty() {
                        self.venue_outcomes(v, ts, batch);
                    }
                }
                None
            }
            Ok(Incoming::Ping) => None,
            Ok(Incoming::Pong) => {
                keepalive.pong_deadline = None;
                None
            }
            Ok(Incoming::Close { code, reason }) => Some(End::Closed { code, reason }),
            Err(TransportError::TooLarge(max)) => {
                Some(End::TooLarge(TransportError::TooLarge(max).to_string()))
            }
            Err(e) => Some(End::Error(e.to_string())),
        }
    }

    /// Queues the batch (if not empty) under the when-full policy; `Some` if the writer is gone.
    async fn flush(&self, batch: &mut Batch) -> Option<End> {
        if batch.is_empty() {
            return None;
        }
        let rt = &*self.rt;
        let messages = batch.messages;
        let next = self.queue.batch(
            rt.idx,
            self.conn,
            batch.data.len().min(BATCH_BYTES),
            batch.items.len(),
        );
        let mut full = std::mem::replace(batch, next);
        if messages > 0 {
            full.first_seq = rt.seq.fetch_add(messages as u64, Relaxed);
            let last_ts = full.items.last().map_or(0, |i| i.ts);
            rt.stats.messages.fetch_add(messages as u64, Relaxed);
            rt.stats.bytes.fetch_add(full.data.len() as u64, Relaxed);
            rt.stats.last_message_ns.store(last_ts, Relaxed);
            self.sent_messages.fetch_add(messages as u64, Relaxed);
        }
        let mut dropped = self.dropped_pending.load(Relaxed);
        let sent = self.queue.send(full, &mut dropped).await;
        self.dropped_pending.store(dropped, Relaxed);
        match sent {
            Sent::All => None,
            Sent::Dropped(n) => {
                rt.stats.dropped.fetch_add(n as u64, Relaxed);
                if dropped == n as u64 {
                    tracing::warn!(stream = %rt.name, conn = self.conn, "Queue full: dropping messages (when_full = drop_newest); the gap is marked in the data.");
                }
                None
            }
            Sent::Closed => Some(End::WriterGone),
        }
    }
}

/// A failed connect attempt, as logged and recorded in its `connect_failed` event.
struct Failure {
    /// The URL (masked) that failed: the token endpoint or the WebSocket URL.
    url: String,
    /// What went wrong.
    error: String,
    /// The step that failed, when it was not the WebSocket dial itself.
    step: Option<&'static str>,
    /// The HTTP status of a refusal.
    http_status: Option<u16>,
    /// Where a redirect pointed (masked).
    location: Option<String>,
    /// The wait the server asked for, capped at `retry_after_max`.
    retry_after: Option<Duration>,
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
        }
    }
}

/// How a connection went, for its supervisor (see [`Notice::Ended`]).
struct Life {
    /// The handshake succeeded.
    connected: bool,
    /// How long it was connected.
    uptime: Duration,
    /// Data came.
    productive: bool,
    /// The server's `Retry-After` of a refused upgrade, capped.
    retry_after: Option<Duration>,
}

/// Whether a venue's text message is data (of some topic, or one that cannot be told; a
/// Bitfinex channel frame, heartbeats included: they come only on a live subscription), as
/// opposed to an ack, a refusal, a pong or a request.
fn is_data(family: crate::venue::Family, msg: &[u8]) -> bool {
    crate::venue::wire::classify(family, msg).is_data()
}

/// A venue connection's subscription tracking and pending actions.
struct VenueState {
    /// The venue's protocol family.
    family: crate::venue::Family,
    tracker: Tracker,
    outcomes: Vec<Outcome>,
    /// Messages to send as soon as the batch is queued (Deribit's `test_request` answers).
    replies: Vec<String>,
    /// The venue asked for a reconnect, for this reason.
    replace: Option<String>,
    /// The supervisor was told.
    replace_sent: bool,
    /// Failing subscriptions this connection added to the stream's count.
    counted: u64,
    /// A data message came (see [`is_data`]).
    delivered: bool,
    /// The venue is in maintenance until then at the latest.
    maintenance_until: Option<Instant>,
}

/// Keepalive and liveness deadlines of one connection.
struct Keepalive {
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
    fn new(rt: &StreamRuntime, server_ping: Option<Duration>) -> Self {
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

    fn next_deadline(&self) -> Instant {
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

    /// Checks the liveness rules and sends what is due; `Err` ends the connection.
    async fn on_timer(
        &mut self,
        ws: &mut transport::Connection,
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
            let stamped = rt
                .venue
                .as_ref()
                .and_then(|v| crate::venue::wire::stamp(v.family, text, rt.clock.now_ns()));
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

/// A frame's receive time: the kernel's stamp of the data that completed it when kernel stamps
/// are on and one has come, else the clock now.
#[inline]
fn receive_ts(ws: &transport::Connection, clock: &crate::clock::Clock) -> u64 {
    ws.received_ns().unwrap_or_else(|| clock.now_ns())
}
