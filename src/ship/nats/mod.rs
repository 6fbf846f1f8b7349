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
//!
//! The parts: this file (the channel between writer and sink, the sink task's start and
//! deadline), `queue` (the writer's end: queue slots, line copies, gaps to mark), `client`
//! (connect options, the connection and its JetStream context), `sink` (the task's loop, up and
//! down), `publish` (publishes and acks, in order), `guard` (what is known of each subject,
//! the read-back after a failure) and `event` (what happens to the sink: its counters, state
//! and log lines).

mod client;
mod event;
mod guard;
mod publish;
mod queue;
mod sink;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::config::NatsConfig;
pub use crate::observe::stats::NatsState;
use queue::Shared;
pub use queue::{Copies, LineCopy, NatsTx};
pub use sink::run;

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
    stats: Arc<crate::observe::stats::Stats>,
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
    let subjects = recorder
        .streams
        .iter()
        .map(|s| {
            // `NatsConfig::validate` rendered it for every stream that publishes; one that does
            // not never uses its subject.
            config
                .subject_for(&s.name, &s.tags)
                .unwrap_or_default()
                .into()
        })
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Config;
    use crate::error::ConfigError;

    const STREAMS: &str = "[[stream]]\nname = 'a'\nurl = 'wss://h/ws'\n[[stream]]\nname = 'b'\nurl = 'wss://h/ws'\nnats = false\n";

    /// A validated config of two streams (`b` does not publish) with `nats` as its `[nats]`.
    pub(super) fn parse(nats: &str) -> Result<Config, ConfigError> {
        let c = Config::parse_toml(&format!("{STREAMS}[nats]\n{nats}"))?.config;
        c.validate(&crate::net::venue::Catalog)?;
        Ok(c)
    }

    /// Fresh counters for `config`'s streams.
    pub(super) fn stats_for(config: &Config) -> Arc<crate::observe::stats::Stats> {
        Arc::new(crate::observe::stats::Stats::new(
            config
                .streams
                .iter()
                .map(|s| Arc::new(crate::observe::stats::StreamStats::new(&s.name, "")))
                .collect(),
            10,
        ))
    }
}
