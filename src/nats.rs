//! Live fan-out: every recorded line, the same bytes as in the file (without the newline), is
//! published to NATS JetStream.
//!
//! The file stays the source of truth and the writer never waits for NATS. Per write batch the
//! writer reserves a slot in a bounded queue ([`NatsTx::begin`]: `try_reserve`, never an await),
//! copies the batch's encoded lines into one buffer and hands it over. When the queue is full
//! (bounded in lines and bytes, everything accepted and not yet acked counts) the batch's lines
//! are not copied but counted, and the gap is remembered per stream.
//!
//! The sink task ([`run`]) publishes each line with a `Nats-Msg-Id` unique to this run, keeps up
//! to `max_in_flight` acks outstanding (pipelined, awaited in order) and, when an ack fails for a
//! transient reason (timeout, disconnect, no JetStream responder), waits for the connection and
//! publishes the whole window again in order: the server's duplicate detection keeps what it
//! already stored once, so a line is never lost nor duplicated because of a reconnect. After a
//! (re)connect one line is published alone until its ack confirms that the server stores again,
//! and only then are publishes pipelined: a server that is still starting answers the first
//! lines of a window with "no responders" and may store later ones, which would put them
//! before the earlier lines in the stream. A line
//! that cannot be published (the queue was full, NATS was down under `drop_newest`, the server
//! refused it, or the shutdown deadline passed) is counted in `nats_dropped`; once publishing
//! works again the writer writes a `nats_gap` event (`lost`, `from_ts`, `to_ts`) into the
//! stream's file, which is published like any line, so consumers see the gap too.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Secret, WhenFull};
use crate::error::ConfigError;
use crate::record::Batch;
pub use crate::stats::NatsState;
use crate::stats::NatsStats;

/// The `[nats]` table: where and how recorded lines are published. Its `Debug` output masks
/// the URL's user info; token and password are [`Secret`]s.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), `nats://host:4222` (`tls://` for TLS); several separated by commas.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Token authentication.
    #[serde(default)]
    pub token: Option<Secret>,
    /// User name, with `password`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, with `user`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Subject template; `{stream}` becomes the stream name.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Create (or reuse) a JetStream stream of this name covering the subjects.
    #[serde(default)]
    pub stream_name: Option<String>,
    /// Publishes whose ack is outstanding, at most.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Lines accepted and not yet acked, at most (queue and in-flight window).
    #[serde(default = "default_queue_messages")]
    pub queue_messages: usize,
    /// Bytes of those lines, at most.
    #[serde(
        default = "default_queue_bytes",
        deserialize_with = "crate::config::byte_size"
    )]
    pub queue_bytes: u64,
    /// What the sink does while NATS is unreachable (the writer never waits either way).
    #[serde(default = "default_when_full")]
    pub when_full: WhenFull,
    /// How long a publish ack may take before the publish counts as failed and is retried.
    #[serde(
        default = "default_ack_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub ack_timeout: Duration,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self
            .url
            .split(',')
            .map(|u| crate::config::mask_url(u.trim()))
            .collect();
        f.debug_struct("NatsConfig")
            .field("url", &urls.join(","))
            .field("credentials_file", &self.credentials_file)
            .field("token", &self.token)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("subject", &self.subject)
            .field("stream_name", &self.stream_name)
            .field("max_in_flight", &self.max_in_flight)
            .field("queue_messages", &self.queue_messages)
            .field("queue_bytes", &self.queue_bytes)
            .field("when_full", &self.when_full)
            .field("ack_timeout", &self.ack_timeout)
            .finish()
    }
}

fn default_subject() -> String {
    "wsrec.{stream}".to_owned()
}
fn default_max_in_flight() -> usize {
    1024
}
fn default_queue_messages() -> usize {
    100_000
}
fn default_queue_bytes() -> u64 {
    64 << 20
}
fn default_when_full() -> WhenFull {
    WhenFull::DropNewest
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(5)
}

impl NatsConfig {
    /// A config for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            credentials_file: None,
            token: None,
            user: None,
            password: None,
            subject: default_subject(),
            stream_name: None,
            max_in_flight: default_max_in_flight(),
            queue_messages: default_queue_messages(),
            queue_bytes: default_queue_bytes(),
            when_full: default_when_full(),
            ack_timeout: default_ack_timeout(),
        }
    }

    /// The subjects a created JetStream stream covers: `prefix.>` for a template ending in
    /// `.{stream}` (the same for every shard, whatever streams it records), else `subjects`.
    fn stream_subjects(&self, subjects: &[async_nats::Subject]) -> Vec<String> {
        match self.subject.strip_suffix(".{stream}") {
            Some(prefix) if !prefix.contains("{stream}") => vec![format!("{prefix}.>")],
            _ => {
                let mut all: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
                all.sort();
                all.dedup();
                all
            }
        }
    }

    /// The subject of a stream's lines.
    pub fn subject_for(&self, stream: &str) -> String {
        self.subject.replace("{stream}", stream)
    }

    /// Checks what serde cannot; `streams` are the names of the streams that publish.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the `nats.` field and the fix.
    pub fn validate<'a>(
        &self,
        streams: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            field: format!("nats.{field}"),
            message,
        };
        let urls: Vec<&str> = self.url.split(',').map(str::trim).collect();
        if self.url.trim().is_empty() {
            return Err(invalid("url", "is empty: give nats://host:4222".into()));
        }
        for u in &urls {
            if let Err(e) = u.parse::<async_nats::ServerAddr>() {
                return Err(invalid(
                    "url",
                    format!(
                        "`{}` is not a NATS server address ({e}); expected nats://host:4222",
                        crate::config::mask_url(u)
                    ),
                ));
            }
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(invalid(
                "user",
                "user and password go together: give both or neither".into(),
            ));
        }
        let methods = [
            self.credentials_file.is_some(),
            self.token.is_some(),
            self.user.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(invalid(
                "credentials_file",
                "give one of credentials_file, token, or user and password".into(),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(invalid("max_in_flight", "must be at least 1".into()));
        }
        if self.queue_messages < self.max_in_flight {
            return Err(invalid(
                "queue_messages",
                format!(
                    "must be at least max_in_flight ({}): in-flight lines count in the queue",
                    self.max_in_flight
                ),
            ));
        }
        if self.queue_bytes < 64 * 1024 {
            return Err(invalid("queue_bytes", "must be at least 65536".into()));
        }
        if self.ack_timeout.is_zero() {
            return Err(invalid("ack_timeout", "must be greater than 0".into()));
        }
        if let Some(name) = &self.stream_name
            && (name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(invalid(
                "stream_name",
                format!(
                    "`{name}`: a JetStream stream name takes ASCII letters, digits, `_` and `-`"
                ),
            ));
        }
        if !self.subject.contains("{stream}") {
            return Err(invalid(
                "subject",
                "must contain {stream}, so each stream gets its own subject".into(),
            ));
        }
        for s in streams {
            let subject = self.subject_for(s);
            let ok = !subject.split('.').any(|t| {
                t.is_empty() || t == "*" || t == ">" || t.bytes().any(|b| b.is_ascii_whitespace())
            });
            if !ok {
                return Err(invalid(
                    "subject",
                    format!(
                        "`{subject}` (stream `{s}`) is not a valid NATS subject: no empty tokens, \
                         wildcards or spaces"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The connect options, with credentials; never logged.
    async fn options(&self) -> std::io::Result<async_nats::ConnectOptions> {
        let mut o = async_nats::ConnectOptions::new();
        if let Some(path) = &self.credentials_file {
            o = o.credentials_file(path).await?;
        }
        if let Some(t) = &self.token {
            o = o.token(t.0.clone());
        }
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            o = o.user_and_password(u.clone(), p.0.clone());
        }
        Ok(o.name("wsrec")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((50u64 << attempts.min(6)).min(2_000))
            }))
    }
}

/// Lines of one stream not published, not yet marked.
#[derive(Debug, Default)]
struct Gap {
    lost: u64,
    from_ts: u64,
    to_ts: u64,
}

impl Gap {
    fn add(&mut self, n: u64, from: u64, to: u64) {
        if self.lost == 0 {
            self.from_ts = from;
        }
        self.lost += n;
        self.to_ts = to;
    }
}

/// What the writer and the sink share.
#[derive(Debug)]
struct Shared {
    stats: Arc<crate::stats::Stats>,
    /// Publishing works (set by the sink): gaps may be marked.
    up: AtomicBool,
    /// Per stream: lines not published, to be marked.
    gaps: Vec<Mutex<Gap>>,
    /// Per stream: `gaps[i]` is non-empty.
    gap_pending: Vec<AtomicBool>,
    queue_messages: u64,
    queue_bytes: u64,
}

impl Shared {
    fn nats(&self) -> &NatsStats {
        &self.stats.nats
    }

    fn lose(&self, stream: usize, n: u64, from: u64, to: u64) {
        if n == 0 {
            return;
        }
        self.nats().dropped.fetch_add(n, Relaxed);
        if let Some(g) = self.gaps.get(stream) {
            g.lock().unwrap_or_else(|e| e.into_inner()).add(n, from, to);
            self.gap_pending[stream].store(true, Relaxed);
        }
    }

    fn release(&self, lines: u64, bytes: u64) {
        self.nats().queued.fetch_sub(lines, Relaxed);
        self.nats().queued_bytes.fetch_sub(bytes, Relaxed);
    }
}

/// The encoded lines of one write batch, for the sink.
#[derive(Debug)]
pub struct Copies {
    stream: usize,
    data: Vec<u8>,
    /// Per line: end offset in `data`, receive time.
    lines: Vec<(usize, u64)>,
}

/// The copies of one batch being written: either a queue slot and the lines, or a count of
/// the lines that found the queue full.
#[derive(Debug)]
pub struct LineCopy {
    permit: Option<mpsc::OwnedPermit<Copies>>,
    copies: Copies,
    dropped: (u64, u64, u64),
}

impl LineCopy {
    /// Adds a line (without its newline).
    #[inline]
    pub fn push(&mut self, line: &[u8], ts: u64) {
        if self.permit.is_some() {
            self.copies.data.extend_from_slice(line);
            self.copies.lines.push((self.copies.data.len(), ts));
        } else {
            let d = &mut self.dropped;
            if d.0 == 0 {
                d.1 = ts;
            }
            d.0 += 1;
            d.2 = ts;
        }
    }
}

/// The writer's end of the fan-out.
#[derive(Debug)]
pub struct NatsTx {
    tx: mpsc::Sender<Copies>,
    shared: Arc<Shared>,
    /// Per stream: whether it publishes.
    enabled: Vec<bool>,
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
            dropped: (0, 0, 0),
        })
    }

    /// Hands the copies over (or counts them as dropped).
    pub fn finish(&self, copy: LineCopy) {
        let LineCopy {
            permit,
            copies,
            dropped,
        } = copy;
        self.shared
            .lose(copies.stream, dropped.0, dropped.1, dropped.2);
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

/// The sink task's state, built by [`channel`] and consumed by [`run`].
pub struct NatsSink {
    config: NatsConfig,
    rx: mpsc::Receiver<Copies>,
    shared: Arc<Shared>,
    subjects: Vec<async_nats::Subject>,
    /// Host, pid and start time: message ids are unique across shards and restarts.
    id_prefix: String,
}

/// The writer's end and the sink of a recorder; `run_id` (the start time) makes message ids
/// unique across runs.
pub fn channel(
    config: &NatsConfig,
    recorder: &crate::config::Config,
    stats: Arc<crate::stats::Stats>,
    run_id: u64,
) -> (NatsTx, NatsSink) {
    let streams: Vec<(&str, bool)> = recorder
        .streams
        .iter()
        .map(|s| (s.name.as_str(), s.nats))
        .collect();
    stats.nats.set_state(NatsState::Connecting);
    let shared = Arc::new(Shared {
        stats,
        up: AtomicBool::new(false),
        gaps: streams.iter().map(|_| Mutex::default()).collect(),
        gap_pending: streams.iter().map(|_| AtomicBool::new(false)).collect(),
        queue_messages: config.queue_messages as u64,
        queue_bytes: config.queue_bytes,
    });
    let (tx, rx) = mpsc::channel(config.queue_messages.max(1));
    let subjects = streams
        .iter()
        .map(|(name, _)| config.subject_for(name).into())
        .collect();
    (
        NatsTx {
            tx,
            shared: shared.clone(),
            enabled: streams.iter().map(|(_, on)| *on).collect(),
        },
        NatsSink {
            config: config.clone(),
            rx,
            shared,
            subjects,
            id_prefix: format!(
                "{}-{}-{run_id:x}",
                crate::fsutil::host_name(),
                std::process::id()
            ),
        },
    )
}

/// The running sink: its task and the token that cuts it short.
pub struct Running {
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

/// Starts the sink task.
pub fn spawn(sink: NatsSink) -> Running {
    let stop = CancellationToken::new();
    Running {
        task: tokio::spawn(run(sink, stop.clone())),
        stop,
    }
}

/// After the writer is done: lets the sink publish what it holds for up to `within`, then stops
/// it (what is left is counted as dropped).
pub async fn finish(running: Option<Running>, within: Duration) {
    let Some(Running { mut task, stop }) = running else {
        return;
    };
    if tokio::time::timeout(within, &mut task).await.is_err() {
        stop.cancel();
        let _ = task.await;
    }
}

type AckFuture = Pin<
    Box<
        dyn Future<
                Output = Result<
                    async_nats::jetstream::publish::PublishAck,
                    async_nats::jetstream::context::PublishError,
                >,
            > + Send,
    >,
>;

/// A line on its way.
struct Line {
    stream: usize,
    payload: Bytes,
    ts: u64,
    id: u64,
    ack: Option<AckFuture>,
}

/// How long the sink waits between looks at a connection that is down.
const DOWN_POLL: Duration = Duration::from_millis(50);

/// Publishes until the writer drops its end and everything is published, or `stop` is
/// cancelled (the shutdown deadline): what is left then is counted as dropped.
pub async fn run(sink: NatsSink, stop: CancellationToken) {
    let NatsSink {
        config,
        mut rx,
        shared,
        subjects,
        id_prefix,
    } = sink;
    let stats = shared.nats();
    let options = match config.options().await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "Cannot read nats.credentials_file: nothing will be published to NATS (recording goes on).");
            drain(&mut rx, &shared, &stop).await;
            stats.set_state(NatsState::Stopped);
            return;
        }
    };
    let urls: Vec<String> = config.url.split(',').map(|u| u.trim().to_owned()).collect();
    let client = tokio::select! {
        c = options.connect(urls) => c,
        () = stop.cancelled() => {
            stats.set_state(NatsState::Stopped);
            return;
        }
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot set up the NATS client: nothing will be published to NATS (recording goes on).");
            drain(&mut rx, &shared, &stop).await;
            stats.set_state(NatsState::Stopped);
            return;
        }
    };
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(config.ack_timeout)
        .ack_timeout(config.ack_timeout)
        .max_ack_inflight(config.max_in_flight.saturating_mul(2))
        .backpressure_on_inflight(true)
        .build(client.clone());
    let mut s = Sink {
        config,
        shared: shared.clone(),
        subjects,
        id_prefix,
        next_id: 0,
        window: VecDeque::new(),
        pending: VecDeque::new(),
        up: false,
        was_up: false,
        retry_at: tokio::time::Instant::now(),
        ensured: false,
        confirmed: false,
        warned_no_stream: false,
        down_since_lost: 0,
    };
    let mut closed = false;
    loop {
        // Publishing waits on the client (bounded by `ack_timeout`); the deadline cuts it short.
        let publish = async {
            if !s.up && tokio::time::Instant::now() >= s.retry_at {
                let connected =
                    client.connection_state() == async_nats::connection::State::Connected;
                if connected && s.ensure_stream(&js).await {
                    s.set_up(true);
                } else {
                    s.retry_at = tokio::time::Instant::now() + DOWN_POLL;
                }
            }
            if s.up {
                s.fill(&js).await;
            }
        };
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = publish => {}
        }
        if closed && s.window.is_empty() && s.pending.is_empty() {
            break;
        }
        let can_take = !closed && (s.pending.is_empty() || s.dropping());
        let ready = s.up && front_ready(&s.window);
        let retry_at = s.retry_at;
        let front = s.window.front_mut().and_then(|l| l.ack.as_mut());
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            ack = async { front.expect("checked by `ready`").await }, if ready => {
                s.on_ack(ack);
            }
            copies = rx.recv(), if can_take => match copies {
                Some(c) => s.take(c),
                None => closed = true,
            },
            () = tokio::time::sleep_until(retry_at), if !s.up => {}
        }
    }
    // Deadline or done: whatever is left (queued, taken, in flight, or mid-publish when the
    // deadline struck) is counted (the file has it). No gap mark: the writer is done.
    rx.close();
    while rx.try_recv().is_ok() {}
    drop(s);
    let left = stats.queued.swap(0, Relaxed);
    stats.queued_bytes.store(0, Relaxed);
    if left > 0 {
        stats.dropped.fetch_add(left, Relaxed);
        tracing::warn!(
            lines = left,
            "Shutdown: lines not published to NATS before the deadline (the files have them)."
        );
    }
    stats.in_flight.store(0, Relaxed);
    stats.set_state(NatsState::Stopped);
    // Give the client a moment to flush what was acked; nothing waits on it.
    let _ = tokio::time::timeout(Duration::from_millis(200), client.flush()).await;
}

/// `window.front()` has an ack to await.
fn front_ready(window: &VecDeque<Line>) -> bool {
    window.front().is_some_and(|l| l.ack.is_some())
}

/// Without a client: counts everything that arrives as dropped, until the writer is done.
async fn drain(rx: &mut mpsc::Receiver<Copies>, shared: &Shared, stop: &CancellationToken) {
    let mut id = 0;
    loop {
        let c = tokio::select! {
            () = stop.cancelled() => return,
            c = rx.recv() => c,
        };
        let Some(c) = c else { return };
        for l in split(c, &mut id) {
            shared.lose(l.stream, 1, l.ts, l.ts);
            shared.release(1, l.payload.len() as u64);
        }
    }
}

/// The lines of a batch of copies, each a slice of one shared buffer.
fn split(c: Copies, next_id: &mut u64) -> Vec<Line> {
    let data = Bytes::from(c.data);
    let mut start = 0;
    c.lines
        .into_iter()
        .map(|(end, ts)| {
            let payload = data.slice(start..end);
            start = end;
            *next_id += 1;
            Line {
                stream: c.stream,
                payload,
                ts,
                id: *next_id,
                ack: None,
            }
        })
        .collect()
}

struct Sink {
    config: NatsConfig,
    shared: Arc<Shared>,
    subjects: Vec<async_nats::Subject>,
    id_prefix: String,
    next_id: u64,
    /// Published, ack outstanding, in order.
    window: VecDeque<Line>,
    /// Taken from the queue, not yet published.
    pending: VecDeque<Line>,
    /// Publishing works.
    up: bool,
    /// Publishing has worked before (until then lines wait in the queue, whatever the policy).
    was_up: bool,
    /// While down: when to look at the connection again.
    retry_at: tokio::time::Instant,
    /// `stream_name` exists (or none is configured).
    ensured: bool,
    /// An ack came back since publishing was last (re)started: publishes may be pipelined.
    confirmed: bool,
    warned_no_stream: bool,
    /// Lines dropped since publishing went down, for the log line.
    down_since_lost: u64,
}

impl Sink {
    fn set_up(&mut self, up: bool) {
        if up == self.up {
            return;
        }
        self.up = up;
        self.shared.up.store(up, Relaxed);
        let stats = self.shared.nats();
        if up {
            self.was_up = true;
            stats.set_state(NatsState::Connected);
            tracing::info!(
                dropped_while_down = self.down_since_lost,
                "Publishing to NATS."
            );
            self.down_since_lost = 0;
        } else {
            // What is in flight goes back in front of the pending lines, in order, to be
            // published again (same message ids: the server keeps each line once).
            self.confirmed = false;
            let in_flight = self.window.len();
            while let Some(mut line) = self.window.pop_back() {
                line.ack = None;
                self.pending.push_front(line);
            }
            self.retry_at = tokio::time::Instant::now() + DOWN_POLL;
            stats.set_state(NatsState::Connecting);
            tracing::warn!(in_flight, policy = ?self.config.when_full, "NATS unreachable: recording goes on; publishing resumes (and the gap is marked) when it is back.");
        }
    }

    /// Lines taken from the queue are dropped: `drop_newest` while publishing is down (after
    /// it has worked once).
    fn dropping(&self) -> bool {
        !self.up && self.was_up && self.config.when_full == WhenFull::DropNewest
    }

    /// Takes a batch of copies from the queue; under `drop_newest` while down, drops it.
    fn take(&mut self, c: Copies) {
        let lines = split(c, &mut self.next_id);
        if self.dropping() {
            for l in &lines {
                self.drop_line(l);
            }
            return;
        }
        self.pending.extend(lines);
    }

    fn drop_line(&mut self, l: &Line) {
        self.shared.lose(l.stream, 1, l.ts, l.ts);
        self.shared.release(1, l.payload.len() as u64);
        self.down_since_lost += 1;
    }

    /// Creates the configured JetStream stream if it does not exist; true when done (or none
    /// is configured).
    async fn ensure_stream(&mut self, js: &async_nats::jetstream::Context) -> bool {
        if self.ensured {
            return true;
        }
        let Some(name) = self.config.stream_name.clone() else {
            self.ensured = true;
            return true;
        };
        let subjects = self.config.stream_subjects(&self.subjects);
        let config = async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects,
            ..Default::default()
        };
        match js.get_or_create_stream(config).await {
            Ok(_) => {
                tracing::info!(stream_name = %name, "JetStream stream ready.");
                self.ensured = true;
                true
            }
            Err(e) => {
                if !self.warned_no_stream {
                    tracing::warn!(stream_name = %name, error = %e, "Cannot create the JetStream stream; retrying.");
                    self.warned_no_stream = true;
                }
                false
            }
        }
    }

    /// Publishes `line`; false when the connection is not usable (the line is kept).
    async fn publish(
        &mut self,
        js: &async_nats::jetstream::Context,
        line: &mut Line,
    ) -> Result<(), bool> {
        let publish = async_nats::jetstream::message::PublishMessage::build()
            .payload(line.payload.clone())
            .message_id(format!("{}-{}", self.id_prefix, line.id));
        match js
            .send_publish(self.subjects[line.stream].clone(), publish)
            .await
        {
            Ok(ack) => {
                line.ack = Some(std::future::IntoFuture::into_future(ack));
                Ok(())
            }
            Err(e) => Err(transient(e.kind())),
        }
    }

    /// Publishes pending lines while the window has room: one until an ack confirms that the
    /// server stores, then up to `max_in_flight`.
    async fn fill(&mut self, js: &async_nats::jetstream::Context) {
        loop {
            let room = if self.confirmed {
                self.config.max_in_flight
            } else {
                1
            };
            if !self.up || self.window.len() >= room {
                break;
            }
            let Some(mut line) = self.pending.pop_front() else {
                break;
            };
            match self.publish(js, &mut line).await {
                Ok(()) => self.window.push_back(line),
                Err(true) => {
                    // Keep it first in line for the next attempt.
                    self.pending.push_front(line);
                    self.set_up(false);
                }
                Err(false) => self.refused(&line, "refused"),
            }
        }
        self.shared
            .nats()
            .in_flight
            .store(self.window.len() as u64, Relaxed);
    }

    fn refused(&mut self, line: &Line, why: &str) {
        tracing::warn!(subject = %self.subjects[line.stream], reason = why, bytes = line.payload.len(), "NATS refused a line; it is counted and marked as lost for NATS (the file has it).");
        self.shared.lose(line.stream, 1, line.ts, line.ts);
        self.shared.release(1, line.payload.len() as u64);
    }

    fn on_ack(
        &mut self,
        ack: Result<
            async_nats::jetstream::publish::PublishAck,
            async_nats::jetstream::context::PublishError,
        >,
    ) {
        match ack {
            Ok(_) => {
                self.confirmed = true;
                if let Some(line) = self.window.pop_front() {
                    let stats = self.shared.nats();
                    stats.published.fetch_add(1, Relaxed);
                    self.shared.release(1, line.payload.len() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const STREAMS: &str = "[[stream]]\nname = 'a'\nurl = 'wss://h/ws'\n[[stream]]\nname = 'b'\nurl = 'wss://h/ws'\nnats = false\n";

    fn parse(nats: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(&format!("{STREAMS}[nats]\n{nats}"))?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_and_per_stream_opt_out() {
        let c = parse("url = 'nats://127.0.0.1:4222'").unwrap();
        let n = c.nats.as_ref().unwrap();
        assert_eq!(n.subject_for("a"), "wsrec.a");
        assert_eq!(n.stream_subjects(&[]), ["wsrec.>"]);
        let mut other = n.clone();
        other.subject = "{stream}.trades".into();
        assert_eq!(
            other.stream_subjects(&["b.trades".into(), "a.trades".into()]),
            ["a.trades", "b.trades"]
        );
        assert_eq!(n.when_full, WhenFull::DropNewest);
        assert_eq!(n.max_in_flight, 1024);
        assert_eq!(n.ack_timeout, Duration::from_secs(5));
        assert_eq!(n.queue_bytes, 64 << 20);
        let sized = parse("url = 'nats://h:4222'\nqueue_bytes = '1MiB'").unwrap();
        assert_eq!(sized.nats.unwrap().queue_bytes, 1 << 20);
        assert!(c.streams[0].nats);
        assert!(!c.streams[1].nats);
        let none = Config::from_toml(STREAMS).unwrap();
        assert!(none.nats.is_none());
    }

    #[test]
    fn invalid_settings_name_the_field() {
        for (toml, field) in [
            ("url = 'nats://h:4222'\nuser = 'u'", "nats.user"),
            (
                "url = 'nats://h:4222'\ntoken = 't'\nuser = 'u'\npassword = 'p'",
                "nats.credentials_file",
            ),
            ("url = 'nats://h:4222'\nsubject = 'wsrec'", "nats.subject"),
            (
                "url = 'nats://h:4222'\nsubject = 'wsrec.{stream}.>'",
                "nats.subject",
            ),
            (
                "url = 'nats://h:4222'\nstream_name = 'a.b'",
                "nats.stream_name",
            ),
            (
                "url = 'nats://h:4222'\nmax_in_flight = 0",
                "nats.max_in_flight",
            ),
            (
                "url = 'nats://h:4222'\nmax_in_flight = 10\nqueue_messages = 5",
                "nats.queue_messages",
            ),
            ("url = ''", "nats.url"),
        ] {
            match parse(toml) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{toml}"),
                other => panic!("{toml}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("url = 'nats://h:4222'\nsubjekt = 'x'"),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = parse(
            "url = 'nats://me:hunter2@h:4222,nats://h2:4222'\nuser = 'u'\npassword = 'pw-s3cret'",
        )
        .unwrap();
        let dbg = format!("{:?}", c.nats.unwrap());
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("pw-s3cret"), "{dbg}");
        let c = parse("url = 'nats://h:4222'\ntoken = 'tok-s3cret'").unwrap();
        assert!(!format!("{c:?}").contains("tok-s3cret"));
    }

    #[test]
    fn full_queue_counts_lines_and_marks_the_gap_once_up() {
        let config =
            parse("url = 'nats://127.0.0.1:4222'\nmax_in_flight = 1\nqueue_messages = 1").unwrap();
        let stats = Arc::new(crate::stats::Stats::new(
            config
                .streams
                .iter()
                .map(|s| Arc::new(crate::stats::StreamStats::new(&s.name, "")))
                .collect(),
            10,
        ));
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
        batch.push_message(40, crate::record::Kind::Text, b"{}");
        let copy = tx.begin(0, &mut batch, clock).unwrap();
        let (item, bytes) = batch.iter().next().unwrap();
        assert_eq!(item.kind, crate::record::Kind::Event);
        assert_eq!(
            bytes,
            br#""event":"nats_gap","lost":2,"from_ts":20,"to_ts":30"#
        );
        assert_eq!(item.ts, 40);
        assert!(!tx.gap_due(0));
        drop(copy);
    }
}
