//! The sink task: takes the writer's copies from the queue, splits them into lines and runs
//! the loop that publishes them and awaits their acks; brings publishing up (connection,
//! JetStream stream) and down (the window goes back in front of the pending lines); counts
//! what is left at the deadline.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::NatsSink;
use super::client::{Connected, NotConnected, connect};
use super::event::NatsEvent;
use super::guard::Track;
use super::queue::{Copies, Gap, LineEnd, Shared};
use crate::config::{NatsConfig, WhenFull};
use crate::observe::stats::NatsState;

/// How long the sink waits between looks at a connection that is down.
const DOWN_POLL: Duration = Duration::from_millis(50);

pub(super) type AckFuture = Pin<
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
pub(super) struct Line {
    pub(super) stream: usize,
    pub(super) payload: Bytes,
    pub(super) ts: u64,
    pub(super) id: u64,
    pub(super) ack: Option<AckFuture>,
    /// Published with `Nats-Expected-Last-Subject-Sequence`.
    pub(super) guarded: bool,
}

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
    let (client, js) = match connect(&config, &stop).await {
        Ok(Connected { client, js }) => (client, js),
        Err(NotConnected::Failed) => {
            drain(&mut rx, &shared, &stop).await;
            stats.set_state(NatsState::Stopped);
            return;
        }
        Err(NotConnected::Stopped) => {
            stats.set_state(NatsState::Stopped);
            return;
        }
    };
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
                Some(c) => s.add_pending_or_drop(c),
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
    NatsEvent::Unpublished { lines: left }.emit(&shared);
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
            lose_line(shared, &l);
        }
    }
}

/// Counts `line` as lost for NATS (and marked in its stream's gap), and no longer queued.
fn lose_line(shared: &Shared, line: &Line) {
    shared.lose(line.stream, &Gap::line(line.ts));
    shared.release(1, line.payload.len() as u64);
}

/// The lines of a batch of copies, each a slice of one shared buffer.
fn split(c: Copies, next_id: &mut u64) -> Vec<Line> {
    let data = Bytes::from(c.data);
    let mut start = 0;
    c.lines
        .into_iter()
        .map(|LineEnd { end, ts }| {
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

/// The sink task's state.
pub(super) struct Sink {
    pub(super) config: NatsConfig,
    pub(super) shared: Arc<Shared>,
    pub(super) subjects: Vec<async_nats::Subject>,
    pub(super) id_prefix: String,
    next_id: u64,
    /// Published, ack outstanding, in order.
    pub(super) window: VecDeque<Line>,
    /// Per stream: its subject's state in JetStream.
    pub(super) track: Vec<Track>,
    /// Taken from the queue, not yet published.
    pub(super) pending: VecDeque<Line>,
    /// Publishing works.
    pub(super) up: bool,
    /// Publishing has worked before (until then lines wait in the queue, whatever the policy).
    was_up: bool,
    /// While down: when to look at the connection again.
    retry_at: tokio::time::Instant,
    /// `stream_name` exists (or none is configured).
    ensured: bool,
    /// An ack came back since publishing was last (re)started: publishes may be pipelined.
    pub(super) confirmed: bool,
    pub(super) warned_no_stream: bool,
    /// A read-back failed and was logged; cleared by one that works.
    pub(super) warned_read_back: bool,
    /// Lines dropped since publishing went down, for the log line.
    down_since_lost: u64,
}

impl Sink {
    pub(super) fn set_up(&mut self, up: bool) {
        if up == self.up {
            return;
        }
        self.up = up;
        self.shared.up.store(up, Relaxed);
        if up {
            self.was_up = true;
            NatsEvent::Up {
                dropped_while_down: self.down_since_lost,
            }
            .emit(&self.shared);
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
            NatsEvent::Down {
                in_flight,
                policy: self.config.when_full,
            }
            .emit(&self.shared);
        }
    }

    /// Lines taken from the queue are dropped: `drop_newest` while publishing is down (after
    /// it has worked once).
    fn dropping(&self) -> bool {
        !self.up && self.was_up && self.config.when_full == WhenFull::DropNewest
    }

    /// Splits a batch of copies taken from the queue into lines and adds them to the pending
    /// lines; under `drop_newest` while down, counts them as dropped instead.
    fn add_pending_or_drop(&mut self, c: Copies) {
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
        lose_line(&self.shared, l);
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
}
