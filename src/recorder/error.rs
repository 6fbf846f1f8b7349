//! Why the recorder could not start or did not stop cleanly ([`RunError`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ConfigError;

/// Why the recorder could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The output directory cannot be created or written.
    #[error("output directory {}: {source}; check the path and its permissions", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The journal directory set in the config cannot hold the journal.
    #[error("journal_dir {}: {source}; give a writable directory with room for the journal (8 KiB per stream, at least 256 KiB; shared memory such as /dev/shm is best), or \"\" to record without one", path.display())]
    Journal {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The status socket cannot be set up.
    #[error(transparent)]
    Status(#[from] crate::observe::status::StatusError),
    /// The metrics endpoint cannot listen on its address.
    #[error(transparent)]
    Metrics(#[from] crate::observe::metrics::MetricsError),
    /// A stream with `stop_on_refusal` (one-line mode) stopped because its first connection
    /// failed in a way retrying does not fix; the recorder shut down in order (exit code 2:
    /// the URL, its credentials or the certificate need fixing).
    #[error(transparent)]
    Refused(#[from] crate::net::stream::Refused),
    /// A thread could not be started.
    #[error("cannot start the compressor thread: {0}")]
    Thread(std::io::Error),
    /// Shutdown did not finish within the deadline.
    #[error(
        "shutdown did not finish within {deadline:?}: still running: {laggards}; files left with the .open suffix will need recovery"
    )]
    ShutdownTimeout {
        /// The deadline.
        deadline: Duration,
        /// What was still running.
        laggards: String,
    },
}
