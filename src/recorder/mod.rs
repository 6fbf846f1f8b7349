//! The recorder as a library: build it from a [`Config`] (or with [`RecorderBuilder`]) and
//! [`Recorder::run`] it until a shutdown token is cancelled.
//!
//! `run` first raises the soft open-file limit to the hard one and refuses to start when the
//! streams would still not fit in it ([`descriptors_needed`]). It wires the pipeline (see the
//! crate docs), then waits for shutdown and takes it down in order: connections close and drop
//! their queue senders, the writer drains what they queued and closes every file (its disk
//! worker, a task on tokio's blocking pool, finishes the last writes), the compressor and the
//! NATS publisher finish what time allows, the uploader stops, the status socket is removed.
//! All of it within the configured deadline; a task that overruns is named in the error.
//!
//! Layout: this file holds [`Recorder`] and the order of `run`; `builder.rs` the
//! [`RecorderBuilder`], `error.rs` [`RunError`], `open_files.rs` the open-file check,
//! `streams.rs` the per-connection runtimes built from the stream configs, `pipeline.rs` the
//! wiring of the stages, `shutdown.rs` the ordered shutdown, `status_log.rs` the periodic
//! status log.

mod builder;
mod error;
mod open_files;
mod pipeline;
mod shutdown;
mod status_log;
mod streams;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::ConfigError;
use crate::observe::stats::{Stats, StreamStats};

pub use builder::RecorderBuilder;
pub use error::RunError;
pub use open_files::descriptors_needed;

use open_files::raise_open_file_limit;
use pipeline::Pipeline;

/// A configured recorder, ready to run.
#[derive(Debug)]
pub struct Recorder {
    config: Config,
    clock: Clock,
    stats: Arc<Stats>,
}

impl Recorder {
    /// A builder with no streams, no status socket and no status log.
    pub fn builder() -> RecorderBuilder {
        RecorderBuilder::default()
    }

    /// A recorder for a complete config.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn new(mut config: Config) -> Result<Recorder, ConfigError> {
        config.validate(&crate::net::venue::Catalog)?;
        // From here on a stream's `tags` are all its tags: events, manifests and paths use them.
        config.apply_top_level_tags();
        let streams = config
            .streams
            .iter()
            .map(|s| {
                let stats = StreamStats::new(&s.name, &s.masked_url()).with_tags(s.tags.clone());
                Arc::new(stats)
            })
            .collect();
        let stats = Arc::new(Stats::new(streams, config.queue_capacity as u64));
        Ok(Recorder {
            config,
            clock: Clock::System,
            stats,
        })
    }

    /// Uses `clock` for receive timestamps and rotation (tests use [`Clock::tokio`]).
    #[doc(hidden)]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The live counters (what the status socket serves).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Records until `shutdown` is cancelled (or a stream with
    /// [`StreamConfig::stop_on_refusal`](crate::StreamConfig::stop_on_refusal) gives up), then
    /// drains, closes every file and returns.
    ///
    /// # Errors
    /// Startup failures (config, open-file limit, output directory, status socket, metrics
    /// address) before anything is written, a stream whose first connection failed for good
    /// ([`RunError::Refused`], after the same ordered shutdown), or a shutdown that overran its
    /// deadline.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunError> {
        let Recorder {
            config,
            clock,
            stats,
        } = self;
        raise_open_file_limit(descriptors_needed(&config), config.streams.len())?;
        // A taken metrics port is bad input found before anything is created on disk.
        let metrics = match config.metrics_listen {
            Some(addr) => Some(crate::observe::metrics::MetricsServer::bind(addr).await?),
            None => None,
        };
        std::fs::create_dir_all(&config.output_dir).map_err(|source| RunError::OutputDir {
            path: config.output_dir.clone(),
            source,
        })?;
        check_writable(&config.output_dir)?;
        // Files a crashed run left open are completed from its journal, made readable and
        // closed before anything new.
        if let Some(dir) = config.journal_dir_path() {
            crate::store::journal::replay(&dir, &config.output_dir);
        }
        crate::store::recover::recover_dir(&config.output_dir, &config.streams, clock.now_ns());

        // The pipeline stops on the caller's token, or on a stream that gave up; the caller's
        // token is never cancelled from here.
        let stop = shutdown.child_token();
        let journal = open_journal(&config)?;
        let journal_path = journal
            .as_ref()
            .map_or_else(|| "none".to_owned(), |j| j.path().display().to_string());
        let mut pipeline = Pipeline::start(&config, clock, &stats, &stop, metrics, journal).await?;
        tracing::info!(
            streams = config.streams.len(),
            output_dir = %config.output_dir.display(),
            journal = %journal_path,
            "Recording."
        );

        let refused = tokio::select! {
            () = stop.cancelled() => None,
            Some(r) = pipeline.refused.recv() => Some(r),
        };
        stop.cancel();
        let stopped = pipeline.shut_down(config.shutdown_timeout).await;
        match refused {
            // An overrun shutdown is logged at ERROR; why the recorder stopped comes first.
            Some(r) => Err(RunError::Refused(r)),
            None => stopped,
        }
    }
}

/// The writer's journal in the configured directory. A directory the config names must hold
/// it; the default one (`/dev/shm`) may be missing or full, and then the recorder runs
/// without a journal, saying so.
fn open_journal(config: &Config) -> Result<Option<crate::store::journal::Journal>, RunError> {
    let Some(dir) = config.journal_dir_path() else {
        return Ok(None);
    };
    let half = crate::store::journal::half_bytes(config.streams.len());
    match crate::store::journal::Journal::create(&dir, &config.output_dir, half) {
        Ok(journal) => Ok(Some(journal)),
        Err(source) if config.journal_dir.is_some() => Err(RunError::Journal { path: dir, source }),
        Err(e) => {
            tracing::warn!(journal_dir = %dir.display(), error = %e, "Cannot keep a journal in the default journal_dir; recording without one: each idle moment's lines are written to the files at once (more CPU with many quiet streams). Set journal_dir to a writable directory, or \"\" to record without one and without this warning.");
            Ok(None)
        }
    }
}

/// Checks that files can be created in `dir`, with a probe file removed again.
fn check_writable(dir: &std::path::Path) -> Result<(), RunError> {
    let probe = dir.join(format!(".wsrec-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| RunError::OutputDir {
            path: dir.to_owned(),
            source,
        })
}
