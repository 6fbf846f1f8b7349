//! Error types at the boundaries callers branch on.
//!
//! A [`ConfigError`] means "the user must fix the input": the binary maps it to exit code 2 and
//! nothing is written. Everything else is a runtime failure (exit code 1).

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
}
