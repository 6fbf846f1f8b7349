//! [`RecorderBuilder`]: a [`Recorder`] put together from code instead of a config file.

use std::path::PathBuf;
use std::time::Duration;

use super::Recorder;
use crate::clock::Clock;
use crate::config::{Config, StreamConfig, WhenFull};
use crate::error::ConfigError;
#[cfg(doc)]
use crate::observe::stats::Stats;

/// Builds a [`Recorder`] from code.
///
/// ```no_run
/// use wsrec::{Recorder, StreamConfig};
/// # async fn example() -> Result<(), wsrec::RunError> {
/// let recorder = Recorder::builder()
///     .output_dir("./data")
///     .stream(
///         StreamConfig::new("bybit", "wss://stream.bybit.com/v5/public/linear")
///             .subscribe(r#"{"op":"subscribe","args":["publicTrade.BTCUSDT"]}"#),
///     )
///     .build()?;
/// let shutdown = tokio_util::sync::CancellationToken::new();
/// recorder.run(shutdown).await
/// # }
/// ```
#[derive(Debug, Default)]
pub struct RecorderBuilder {
    config: Config,
    clock: Option<Clock>,
}

impl RecorderBuilder {
    /// Directory the recordings go under (default `./data`).
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.output_dir = dir.into();
        self
    }

    /// Adds a stream.
    pub fn stream(mut self, stream: StreamConfig) -> Self {
        self.config.streams.push(stream);
        self
    }

    /// Queue capacity between connections and the writer, in messages.
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.config.queue_capacity = messages;
        self
    }

    /// What connections do when the queue is full.
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.config.when_full = policy;
        self
    }

    /// Status socket path; `None` for no socket (the builder's default).
    pub fn status_socket(mut self, path: Option<PathBuf>) -> Self {
        self.config.status_socket = Some(path.unwrap_or_default());
        self
    }

    /// Serve Prometheus/OpenMetrics metrics on `addr` (port 0: a free port, published in
    /// [`Stats::metrics_addr`]); `None` for no endpoint (the default).
    pub fn metrics_listen(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        self.config.metrics_listen = addr;
        self
    }

    /// Bound on how long data sits in memory before it is written to the OS.
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.config.flush_interval = every;
        self
    }

    /// The clock for receive timestamps and rotation (tests use [`Clock::tokio`]).
    #[doc(hidden)]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn build(mut self) -> Result<Recorder, ConfigError> {
        if self.config.status_socket.is_none() {
            self.config.status_socket = Some(PathBuf::new());
        }
        self.config.status_interval = None;
        let r = Recorder::new(self.config)?;
        Ok(match self.clock {
            Some(c) => r.with_clock(c),
            None => r,
        })
    }
}
