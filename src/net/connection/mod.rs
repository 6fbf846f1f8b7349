//! One connection of a stream, from dial to disconnect: connect, subscribe, read, keep alive,
//! check liveness, and report how it ended.
//!
//! The read loop is the hot path. After each wake-up it takes every frame that is ready without
//! waiting, copies their payloads into one [`Batch`] with one receive timestamp per socket read
//! (refreshed every few frames), and queues the batch in a single hand-off. Lifecycle events go
//! into the same batches, so the data shows exactly where a connection began and ended.

//!
//! This module runs a connection's life and hands batches over; its parts are `dial` (token,
//! handshake, subscribe messages, a failed attempt), `read_loop` (with `dormant`: the stop
//! signals polled only when they fire), `keepalive` (pings, pongs, liveness), `tracking` (what a venue's messages mean) and `event` (what is counted and logged:
//! each happening is one `ConnectionEvent`, emitted once). The stream's settings and shared
//! state ([`StreamRuntime`]) belong to the stream's supervisor ([`crate::net::stream`]).

mod dial;
mod dormant;
pub(crate) mod event;
mod keepalive;
mod read_loop;
pub mod snapshot;
mod tracking;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::Batch;
use crate::net::stream::runtime::StreamRuntime;
use crate::observe::stats::ConnState;
use crate::queue::{QueueTx, Sent};
use event::ConnectionEvent;

/// Payload bytes after which a batch is handed over even if more frames are ready (~300 small
/// messages: the hand-off cost is spread thin, and the queue's byte bound holds many batches).
const BATCH_BYTES: usize = 64 * 1024;
/// How long a close frame may take to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What a connection tells its stream's supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        /// The attempt failed in a way retrying cannot help (a permanent 4xx, a permanent
        /// redirect, a rejected certificate); `None` for every other ending.
        refusal: Option<Refusal>,
    },
}

/// An attempt that failed in a way retrying does not change until someone changes the URL,
/// the credentials or the certificate
/// ([`TransportError::is_permanent`](crate::net::transport::TransportError::is_permanent)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The URL dialled, secrets masked.
    pub url: String,
    /// The HTTP status of a refused or redirected upgrade (none for a rejected certificate).
    pub http_status: Option<u16>,
    /// What went wrong and how to fix it (the `connect_failed` event's `error`).
    pub error: String,
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
    /// them, [`crate::net::venue::track::Tracker::on_binary`]): acks, refusals, pongs and requests
    /// are not. Elsewhere acks cannot be told from data, so as many
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
            refusal: life.refusal,
        });
    }

    fn new_batch(&self) -> Batch {
        Batch::new(self.rt.idx, self.conn)
    }

    /// Whether it connected, how long it was up, whether it received data, and the
    /// `Retry-After` of a refusal or why retrying cannot help.
    async fn run_inner(&self) -> Life {
        let rt = &*self.rt;
        let stopped = Life {
            connected: false,
            uptime: Duration::ZERO,
            productive: false,
            retry_after: None,
            refusal: None,
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
                ConnectionEvent::ConnectFailed {
                    conn: self.conn,
                    url: &f.url,
                    step: f.step,
                    error: &f.error,
                }
                .emit(rt);
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
                    refusal: f.refusal(),
                    ..stopped
                };
            }
        };
        let connected_at = Instant::now();
        let extensions = ws.extensions().unwrap_or("").to_owned();
        ConnectionEvent::Connected {
            conn: self.conn,
            url: &url,
            extensions: &extensions,
        }
        .emit(rt);
        let mut batch = self.new_batch();
        batch.push_event(rt.clock.now_ns(), "connected", |f| {
            f.str("url", &url)
                .str("host", crate::fsutil::host_name())
                .num("pid", u64::from(std::process::id()));
            if let Some(old) = self.replaces {
                f.num("replaces", old);
            }
            if rt.shard.count > 1 {
                f.num("shard", rt.shard.number as u64)
                    .num("shards", rt.shard.count as u64);
            }
            if !extensions.is_empty() {
                f.str("extensions", &extensions);
            }
            f.str(
                "ts_source",
                if ws.kernel_stamps() { "kernel" } else { "read" },
            );
            if !rt.tags.is_empty() {
                f.str_map(
                    "tags",
                    rt.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
            }
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
        ConnectionEvent::Disconnected {
            conn: self.conn,
            reason: end.reason(),
            detail: &detail,
            messages,
            planned: matches!(end, End::Shutdown | End::Replaced),
        }
        .emit(rt);
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
            refusal: None,
        }
    }

    /// Messages this connection received so far (sent batches plus the one in hand).
    fn messages_in_conn(&self, batch: &Batch) -> u64 {
        self.sent_messages.load(Relaxed) + batch.messages as u64
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
                ConnectionEvent::Dropped {
                    conn: self.conn,
                    count: n as u64,
                    first: dropped == n as u64,
                }
                .emit(rt);
                None
            }
            Sent::Closed => Some(End::WriterGone),
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
    /// A failed attempt that retrying cannot help.
    refusal: Option<Refusal>,
}
