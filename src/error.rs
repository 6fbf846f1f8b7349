//! Error types at the boundaries callers branch on.
//!
//! A [`ConfigError`] means "the user must fix the input" (or, for [`ConfigError::OpenFiles`],
//! the limit the input does not fit in): the binary maps it to exit code 2 and nothing is
//! written. Everything else is a runtime failure (exit code 1).

use std::path::PathBuf;

/// A problem with the configuration: the file, its syntax or a value in it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse or has an unknown or mistyped field.
    #[error("invalid config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, naming the field and line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {field}: {message}")]
    Invalid {
        /// The field (with its stream).
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The process may not open enough files (descriptors) for the configured streams, even
    /// with its soft limit raised to the hard one.
    #[error(
        "{streams} stream(s) need about {needed} open files (sockets and files), but this process \
         may open only {limit} (`ulimit -n`; hard limit {}). Raise the limit to at least {needed}: \
         `ulimit -n {needed}` in the shell that starts wsrec (above the hard limit: as root, or in \
         /etc/security/limits.conf), `LimitNOFILE={needed}` in its systemd unit, \
         `--ulimit nofile={needed}` with docker run; or split the streams over several instances",
        limit_text(*.hard)
    )]
    OpenFiles {
        /// Streams configured.
        streams: usize,
        /// Descriptors they may need, with a margin.
        needed: u64,
        /// The soft limit in force.
        limit: u64,
        /// The hard limit.
        hard: u64,
    },
}

/// An `RLIMIT_NOFILE` value as `ulimit` shows it.
fn limit_text(limit: u64) -> String {
    if limit == u64::MAX {
        "unlimited".to_owned()
    } else {
        limit.to_string()
    }
}
