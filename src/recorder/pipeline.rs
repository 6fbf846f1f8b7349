//! Wiring the stages at start: the stream runtimes and writer sinks, the status socket and
//! metrics endpoint, then each stage before what feeds it (the uploader, the compressor, the
//! disk worker, the queue, the writer with its NATS hand-off), then one task per connection,
//! and the side tasks (status socket, metrics, status log). What it starts is a [`Pipeline`],
//! which `shutdown.rs` takes down in order.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::RunError;
use super::status_log::status_log;
use super::streams::stream_tasks;
use crate::clock::Clock;
use crate::config::Config;
use crate::net::stream::Refused;
use crate::observe::stats::Stats;
use crate::observe::status::StatusServer;
use crate::store::compress::Compressor;
use crate::store::writer::{StreamSink, Writer, WriterSettings};

/// Most messages a connection puts in one hand-off.
const BATCH_MAX: usize = 2048;

/// The running stages, as [`Pipeline::start`] left them: what shutdown waits for, in order.
pub(super) struct Pipeline {
    /// One task per connection; they hold the only queue senders.
    pub(super) streams: TaskTracker,
    /// The writer: done when every sender is gone and it has closed every file.
    pub(super) writer: JoinHandle<()>,
    /// The compressor, if `compress` is on.
    pub(super) compressor: Option<Compressor>,
    /// The NATS publisher, if configured.
    pub(super) nats: Option<crate::ship::nats::Running>,
    /// The uploader, if configured.
    pub(super) uploader: Option<crate::ship::upload::Uploader>,
    /// Stops the side tasks.
    pub(super) side: CancellationToken,
    /// Status socket, metrics endpoint and status log.
    pub(super) side_tasks: TaskTracker,
    /// Streams that stopped because their first connection failed for good
    /// (`stop_on_refusal`); the recorder shuts down at the first.
    pub(super) refused: mpsc::UnboundedReceiver<Refused>,
}

impl Pipeline {
    /// Builds and starts every stage of `config`; connections run until `shutdown`.
    /// Everything that can fail on bad input is done before the first connection.
    ///
    /// # Errors
    /// A stream that cannot be set up (bad URL, CA file, proxy or token URL), a status socket
    /// that cannot be bound, an uploader or compressor that cannot start. (`metrics`, bound by
    /// the caller before the output directory is made, is only started here, as is the
    /// writer's `journal`.)
    pub(super) async fn start(
        config: &Config,
        clock: Clock,
        stats: &Arc<Stats>,
        shutdown: &CancellationToken,
        metrics: Option<crate::observe::metrics::MetricsServer>,
        journal: Option<crate::store::journal::Journal>,
    ) -> Result<Pipeline, RunError> {
        let batch_max = BATCH_MAX.min(config.queue_capacity.div_ceil(4)).max(1);
        let pressure = Arc::new(crate::fair::Pressure::default());
        let tasks = stream_tasks(config, stats, clock, batch_max, &pressure)?;
        let sinks = config
            .streams
            .iter()
            .zip(&stats.streams)
            .map(|(s, st)| StreamSink::new(s, st.clone(), &config.output_dir))
            .collect();
        let status = match config.status_socket_path() {
            Some(path) => Some(StatusServer::bind(&path)?),
            None => None,
        };

        let (uploader, upload_queue) = match &config.upload {
            Some(u) => {
                let tags = config
                    .streams
                    .iter()
                    .map(|s| (s.name.clone(), s.tags.clone()))
                    .collect();
                let (up, q) = crate::ship::upload::Uploader::spawn(
                    u,
                    &config.output_dir,
                    tags,
                    stats.clone(),
                )?;
                // Before the compressor's sweep: what it finishes reaches the queue once.
                crate::ship::upload::sweep(
                    &config.output_dir,
                    config.compress,
                    &q,
                    u.delete_local_after_upload,
                );
                (Some(up), Some(q))
            }
            None => (None, None),
        };
        let compressor = Compressor::spawn(
            config.compress,
            config.compress_level,
            stats.clone(),
            pressure.clone(),
            upload_queue.clone(),
        )
        .map_err(RunError::Thread)?;
        let (compressor, compress_queue) = match compressor {
            Some((c, q)) => (Some(c), Some(q)),
            None => (None, None),
        };
        crate::store::compress::sweep(&config.output_dir, config.compress, compress_queue.as_ref());
        let upload_queue = upload_queue.filter(|_| compress_queue.is_none());
        let disk = crate::store::disk::Disk::new(stats.clone(), compress_queue)
            .with_upload(upload_queue)
            .with_buffer(config.disk_buffer);
        let (queue_tx, queue_rx) = crate::queue::queue(
            config.queue_capacity,
            config.when_full,
            config.streams.len(),
        );
        let writer = Writer::new(
            WriterSettings {
                output_dir: config.output_dir.clone(),
                clock,
                flush_interval: config.flush_interval,
                disk_warn: config.disk_warn,
                disk_stop: config.disk_stop,
            },
            sinks,
            queue_rx,
            disk,
            stats.clone(),
        );
        let writer = match journal {
            Some(journal) => writer.with_journal(journal),
            None => writer,
        };
        let (writer, nats) = match &config.nats {
            Some(n) => {
                let (tx, sink) =
                    crate::ship::nats::channel(n, config, stats.clone(), clock.now_ns());
                (writer.with_nats(tx), Some(crate::ship::nats::spawn(sink)))
            }
            None => (writer, None),
        };
        let writer = tokio::spawn(writer.run());

        let streams = TaskTracker::new();
        let (refused_tx, refused) = mpsc::unbounded_channel();
        for task in tasks {
            streams.spawn(crate::net::stream::run(
                Arc::new(task.runtime),
                task.policy,
                queue_tx.clone(),
                shutdown.clone(),
                refused_tx.clone(),
            ));
        }
        streams.close();
        // From here on only connections hold senders: when they are done, the writer drains.
        drop(queue_tx);

        let side = CancellationToken::new();
        let side_tasks = TaskTracker::new();
        if let Some(server) = status {
            side_tasks.spawn(server.run(stats.clone(), side.clone()));
        }
        if let Some(server) = metrics {
            side_tasks.spawn(server.run(stats.clone(), clock, side.clone()));
        }
        if let Some(every) = config.status_interval {
            side_tasks.spawn(status_log(stats.clone(), every, side.clone()));
        }
        side_tasks.close();
        Ok(Pipeline {
            streams,
            writer,
            compressor,
            nats,
            uploader,
            side,
            side_tasks,
            refused,
        })
    }
}
