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
//! publishes the window again in order: the server's duplicate detection keeps what it already
//! stored once, so a reconnect duplicates nothing. After a (re)connect one line is published
//! alone until its ack confirms that the server stores again, and only then are publishes
//! pipelined.
//!
//! Order per subject is enforced by the server. One connection delivers a subject's lines in
//! order, but a server may miss one (it was still starting and answered "no responders", or the
//! line went down with a connection) and store the lines after it, which the client sent on or
//! had buffered. Storing the missed line then would put it after them. So once a subject has
//! had lines in flight when a publish failed, its next line goes alone with the header
//! `Nats-Expected-Last-Subject-Sequence` (the sequence of its last line acked): the server
//! stores it only if nothing of the subject was stored since, and pipelining resumes with its
//! ack. If the server answers "wrong last sequence" (or that the line is a duplicate), the sink
//! reads the subject back (JetStream API: its last message, then each message after the last
//! one acked, by `Nats-Msg-Id`): the lines found count as published; lines before the last one
//! found that the server missed cannot be stored in order any more and are counted as lost; the
//! lines after it are published again, starting with another guarded one. Only the guarded line
//! carries the header, so lines of other publishers on the same JetStream stream (other
//! subjects) do not get in the way, and nothing is pipelined with it (clustered servers refuse a
//! second guarded publish of a subject while one is in process).
//!
//! A line that cannot be published (the queue was full, NATS was down under `drop_newest`, the
//! server refused it or missed it as above, or the shutdown deadline passed) is counted in
//! `nats_dropped`; once publishing works again the writer writes a `nats_gap` event (`lost`,
//! `from_ts`, `to_ts`) into the stream's file, which is published like any line, so consumers
//! see the gap too.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
pub use crate::config::NatsConfig;
use crate::config::WhenFull;
use crate::record::Batch;
pub use crate::stats::NatsState;
use crate::stats::NatsStats;

/// The sink's side of the `[nats]` table (the table itself is [`NatsConfig`], in `config`).
impl NatsConfig {
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
    /// Published with `Nats-Expected-Last-Subject-Sequence`.
    guarded: bool,
}

/// What the sink knows about one stream's subject in JetStream (see the module doc on order).
#[derive(Debug, Default)]
struct Track {
    /// Stream sequence of the subject's last message known to be stored: the last line acked,
    /// or what a read-back found. `None` until the first ack of this run; until then the
    /// subject's lines go one at a time (a lone line cannot be stored out of order).
    last: Option<u64>,
    /// No unacked line of the subject can still be stored: lines are pipelined without the
    /// header. Cleared when a publish fails with lines of the subject in flight; set again by
    /// the ack of a guarded line the server stored.
    clean: bool,
    /// The server may hold lines of the subject after `last` (a guarded line was refused with
    /// "wrong last sequence" or was a duplicate): read back before the next publish.
    read_back: bool,
    /// Lines of the subject in the window.
    in_flight: usize,
}

/// The most messages of one subject a read-back reads after `last`. Only lines of this run
/// can be there (at most the window and what was resent), unless another publisher uses the
/// subject.
const READ_BACK_MAX: usize = 100_000;

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
    let track = subjects.iter().map(|_| Track::default()).collect();
    let mut s = Sink {
        config,
        shared: shared.clone(),
        subjects,
        id_prefix,
        next_id: 0,
        window: VecDeque::new(),
        track,
        pending: VecDeque::new(),
        up: false,
        was_up: false,
        retry_at: tokio::time::Instant::now(),
        ensured: false,
        confirmed: false,
        warned_no_stream: false,
        warned_read_back: false,
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
                guarded: false,
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
    /// Per stream: its subject's state in JetStream.
    track: Vec<Track>,
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
    /// A read-back failed and was logged; cleared by one that works.
    warned_read_back: bool,
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
            // published again (same message ids: the server keeps each line once). The server
            // may have missed some of it and stored what followed: each subject concerned
            // resumes with a guarded line.
            self.confirmed = false;
            let in_flight = self.window.len();
            while let Some(mut line) = self.window.pop_back() {
                line.ack = None;
                self.track[line.stream].clean = false;
                self.pending.push_front(line);
            }
            for t in &mut self.track {
                t.in_flight = 0;
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

    /// Publishes `line`, with `Nats-Expected-Last-Subject-Sequence: guard` if given; false
    /// when the connection is not usable (the line is kept).
    async fn publish(
        &mut self,
        js: &async_nats::jetstream::Context,
        line: &mut Line,
        guard: Option<u64>,
    ) -> Result<(), bool> {
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
            Err(e) => Err(transient(e.kind())),
        }
    }

    /// Publishes pending lines while the window has room: one until an ack confirms that the
    /// server stores, then up to `max_in_flight`; a subject that is not clean gets one guarded
    /// line at a time (read back first when needed). Stops at the first line that must wait.
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

    /// Reads back what JetStream holds of stream `stream`'s subject after `last` (its last
    /// message, then each one after `last`, our lines known by `Nats-Msg-Id`) and settles the
    /// pending lines of the subject accordingly; `last` becomes the subject's last sequence.
    async fn read_back(
        &mut self,
        js: &async_nats::jetstream::Context,
        stream: usize,
    ) -> Result<(), String> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind as K;
        let subject = self.subjects[stream].as_str();
        let name = js
            .stream_by_subject(subject)
            .await
            .map_err(|e| format!("finding the JetStream stream: {e}"))?;
        let js_stream = js
            .get_stream_no_info(&name)
            .await
            .map_err(|e| e.to_string())?;
        let tip = match js_stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => m.sequence,
            Err(e) if e.kind() == K::NoMessageFound => 0,
            Err(e) => return Err(format!("reading the last message: {e}")),
        };
        let last = self.track[stream].last.unwrap_or(0);
        let ours = format!("{}-", self.id_prefix);
        let mut held = HashSet::new();
        let mut seq = last + 1;
        let mut read = 0;
        while seq <= tip {
            if read == READ_BACK_MAX {
                tracing::warn!(
                    subject,
                    read,
                    "Stopped reading back a subject with this many messages since the last line acked: another publisher uses it? Lines not found are published again (duplicate detection still applies)."
                );
                break;
            }
            let m = match js_stream
                .get_first_raw_message_by_subject(subject, seq)
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == K::NoMessageFound => break,
                Err(e) => return Err(format!("reading message {seq}: {e}")),
            };
            let id = m
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .and_then(|v| v.as_str().strip_prefix(&ours)?.parse::<u64>().ok());
            held.extend(id);
            seq = m.sequence + 1;
            read += 1;
        }
        if tip < last {
            tracing::warn!(
                subject,
                last,
                tip,
                "The JetStream stream holds less of this subject than was acked (purged or recreated?); publishing goes on from what it holds."
            );
        }
        self.settle(stream, &held);
        let t = &mut self.track[stream];
        t.last = Some(tip);
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
        let mut missed = 0u64;
        let mut rest = VecDeque::with_capacity(self.pending.len());
        for (i, line) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            if i > end || line.stream != stream {
                rest.push_back(line);
            } else if held.contains(&line.id) {
                self.stored(&line);
            } else {
                missed += 1;
                self.shared.lose(line.stream, 1, line.ts, line.ts);
                self.shared.release(1, line.payload.len() as u64);
            }
        }
        self.pending = rest;
        if missed > 0 {
            tracing::warn!(subject = %self.subjects[stream], lines = missed, "NATS stored lines of this subject after earlier ones it had missed (a restart or a lost connection); the missed lines cannot be stored in order any more, so they are counted and marked as lost (the file has them).");
        }
    }

    /// Counts `line` as published.
    fn stored(&self, line: &Line) {
        self.shared.nats().published.fetch_add(1, Relaxed);
        self.shared.release(1, line.payload.len() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::error::ConfigError;

    const STREAMS: &str = "[[stream]]\nname = 'a'\nurl = 'wss://h/ws'\n[[stream]]\nname = 'b'\nurl = 'wss://h/ws'\nnats = false\n";

    fn parse(nats: &str) -> Result<Config, ConfigError> {
        let c = Config::parse_toml(&format!("{STREAMS}[nats]\n{nats}"))?.config;
        c.validate(&crate::venue::Catalog)?;
        Ok(c)
    }

    #[test]
    fn a_created_stream_covers_the_subjects() {
        let c = parse("url = 'nats://127.0.0.1:4222'").unwrap();
        let n = c.nats.as_ref().unwrap();
        assert_eq!(n.stream_subjects(&[]), ["wsrec.>"]);
        let mut other = n.clone();
        other.subject = "{stream}.trades".into();
        assert_eq!(
            other.stream_subjects(&["b.trades".into(), "a.trades".into()]),
            ["a.trades", "b.trades"]
        );
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
